#!/usr/bin/env python3
"""Writes bench/REPORT.md from the results scripts/bench.sh left in bench/out.

Usage: report.py OUT_DIR QUICK

The figures and the verdicts against the targets are computed here; the
analysis (what bounds a missed target, with its profile) is kept by hand in
bench/ANALYSIS.md and appended.
"""
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone

out, quick = sys.argv[1], sys.argv[2] == "true"


def load(name):
    with open(os.path.join(out, name + ".json")) as f:
        return json.load(f)


def oha(name):
    data = load(name)
    summary = data["summary"]
    pct = data["latencyPercentiles"]
    codes = data.get("statusCodeDistribution", {})
    ok = sum(v for k, v in codes.items() if k.startswith("2"))
    total = sum(codes.values()) or 1
    return {
        "rps": summary["requestsPerSec"] * ok / total,
        "p50": (pct.get("p50") or 0) * 1000,
        "p99": (pct.get("p99") or 0) * 1000,
        "errors": total - ok,
    }


def sh(command):
    try:
        return subprocess.run(command, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def verdict(value, target, higher_is_better=True):
    met = value >= target if higher_is_better else value <= target
    if met:
        return "met"
    short = 100 * abs(target - value) / target
    # A near miss keeps a decimal, so that it never reads "missed by 0%".
    return f"missed by {short:.1f}%" if short < 10 else f"missed by {short:.0f}%"


hello = oha("hello")
ret_max, send_max = oha("return_max"), oha("send_max")
ret_5k, send_5k = oha("return_5k"), oha("send_5k")
grpc = load("grpc")
e1, e2, er = load("e2e_1w"), load("e2e_2w"), load("e2e_rate")
mem = load("memory")

cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
cores = os.cpu_count()
mem_total = sh("awk '/MemTotal/ {printf \"%.0f GiB\", $2/1048576}' /proc/meminfo")

print(f"""# Passlink benchmark

Measured {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} with `scripts/bench.sh{' --quick' if quick else ''}`
on this machine: {cpu}, {cores} cores, {mem_total}, {platform.system()} {platform.release()}.
Redis, RabbitMQ, the load tool, the SMTP sink and Passlink all share it.

Setup: release builds; a private Redis {sh('redis-server --version | cut -d" " -f3')} without persistence;
RabbitMQ {sh('rabbitmqctl version 2>/dev/null')} (durable queues, persistent messages, publisher confirms);
one API process with one relay task; workers with concurrency 64, prefetch 64; 100,000 users from
`tests/data/make-users.py`; load from oha with 64 connections for HTTP and 64 calls in flight over
4 HTTP/2 connections for gRPC; rate limits off (one caller sends everything).

## Figures against the targets

| what | figure | target | verdict |
| --- | --- | --- | --- |
| API `returnCode` at saturation | {ret_max['rps']:,.0f} links/s | 20,000 links/s | {verdict(ret_max['rps'], 20000)} |
| API `sendLink` at saturation | {send_max['rps']:,.0f} links/s | 20,000 links/s | {verdict(send_max['rps'], 20000)} |
| API `returnCode` p99 at 5,000/s | {ret_5k['p99']:.2f} ms (p50 {ret_5k['p50']:.2f} ms) | under 10 ms | {verdict(ret_5k['p99'], 10, False)} |
| API `sendLink` p99 at 5,000/s | {send_5k['p99']:.2f} ms (p50 {send_5k['p50']:.2f} ms) | under 10 ms | {verdict(send_5k['p99'], 10, False)} |
| end to end, two workers | {e2['emails_per_second']:,.0f} emails/s | 3,000 emails/s | {verdict(e2['emails_per_second'], 3000)} |
| API answer to SMTP acceptance p99 at 1,000/s | {er['latency_ms_p99']:.0f} ms (p50 {er['latency_ms_p50']:.0f} ms) | under 500 ms | {verdict(er['latency_ms_p99'], 500, False)} |
| peak memory, API | {mem['api_kib'] / 1024:.1f} MiB | under 64 MiB | {verdict(mem['api_kib'] / 1024, 64, False)} |
| peak memory, worker | {max(mem['worker_one_kib'], mem['worker_two_kib']) / 1024:.1f} MiB | under 64 MiB | {verdict(max(mem['worker_one_kib'], mem['worker_two_kib']) / 1024, 64, False)} |

## Every figure

| run | throughput | p50 | p99 | errors |
| --- | --- | --- | --- | --- |
| hyper hello world (baseline) | {hello['rps']:,.0f} req/s | {hello['p50']:.2f} ms | {hello['p99']:.2f} ms | {hello['errors']} |
| API `returnCode`, saturation | {ret_max['rps']:,.0f} links/s ({ret_max['rps'] / hello['rps']:.0%} of baseline) | {ret_max['p50']:.2f} ms | {ret_max['p99']:.2f} ms | {ret_max['errors']} |
| API `sendLink`, saturation | {send_max['rps']:,.0f} links/s ({send_max['rps'] / hello['rps']:.0%} of baseline) | {send_max['p50']:.2f} ms | {send_max['p99']:.2f} ms | {send_max['errors']} |
| API `returnCode` at 5,000/s | {ret_5k['rps']:,.0f} links/s | {ret_5k['p50']:.2f} ms | {ret_5k['p99']:.2f} ms | {ret_5k['errors']} |
| API `sendLink` at 5,000/s | {send_5k['rps']:,.0f} links/s | {send_5k['p50']:.2f} ms | {send_5k['p99']:.2f} ms | {send_5k['errors']} |
| gRPC `returnCode`, saturation | {grpc['links_per_second']:,.0f} links/s ({grpc['links_per_second'] / hello['rps']:.0%} of baseline) | {grpc['latency_ms_p50']:.2f} ms | {grpc['latency_ms_p99']:.2f} ms | {grpc['failed']} |
| end to end, one worker, {e1['requests']:,} links | {e1['emails_per_second']:,.0f} emails/s (API {e1['api_rate']:,.0f}/s) | {e1['latency_ms_p50']:.0f} ms | {e1['latency_ms_p99']:.0f} ms | {e1['failed_requests'] + e1['missing']} |
| end to end, two workers, {e2['requests']:,} links | {e2['emails_per_second']:,.0f} emails/s (API {e2['api_rate']:,.0f}/s) | {e2['latency_ms_p50']:.0f} ms | {e2['latency_ms_p99']:.0f} ms | {e2['failed_requests'] + e2['missing']} |
| end to end, two workers, 1,000 links/s, {er['requests']:,} links | {er['emails_per_second']:,.0f} emails/s | {er['latency_ms_p50']:.0f} ms | {er['latency_ms_p99']:.0f} ms | {er['failed_requests'] + er['missing']} |

End-to-end latency runs from the API's answer to the SMTP server's acceptance of that user's
email; emails/s counts from the first request to the last acceptance. Duplicated emails: one
worker {e1['duplicates']}, two workers {e2['duplicates']}, at 1,000/s {er['duplicates']}.
Peak resident memory (VmHWM): API {mem['api_kib'] / 1024:.1f} MiB, one worker alone
{mem['worker_one_kib'] / 1024:.1f} MiB, the larger of two {mem['worker_two_kib'] / 1024:.1f} MiB.

## Commands

```sh
scripts/bench.sh                      # everything; results in bench/out/, this report
oha -z 10s -c 64 -m POST -H 'authorization: Bearer …' -T application/json \\
  -d '{{"returnCode":{{}}}}' --rand-regex-url \\
  'http://127.0.0.1:8092/v3alpha/users/2000000000000[0-9]{{5}}/webauthn/registration_link'
oha … -q 5000 --latency-correction    # the fixed-rate runs
passlink-bench grpc --api … --duration 10s --concurrency 64
passlink-bench e2e --api … --count 30000 --rate 0 --smtp-listen 127.0.0.1:2527
```
""")

analysis = os.path.join(os.path.dirname(__file__), "ANALYSIS.md")
if os.path.exists(analysis):
    with open(analysis) as f:
        print(f.read())
