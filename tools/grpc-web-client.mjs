#!/usr/bin/env node
// A gRPC-web client of Passlink built on Connect (@connectrpc/connect-node's
// gRPC-web transport), as a browser app would use it. It needs no generated
// code: the service and messages come from the descriptor set that the
// proto crate compiles (`passlink-api protoset passlink.protoset`).
//
//   node tools/grpc-web-client.mjs --url http://127.0.0.1:8080 \
//     --protoset passlink.protoset [--http 1.1|2] < calls.json
//
// Standard input holds a JSON array of calls:
//   [{"token": "...", "request": {"userId": "u1", "returnCode": {}},
//     "origin": "https://app.example.com"}]
// where "request" is the request message in protobuf JSON, the same body
// the JSON API takes plus "userId" (and "webAuthNId" for a verify);
// "method" names the method, CreateWebAuthNRegistrationLink by default
// (also StartWebAuthNRegistration and VerifyWebAuthNRegistration);
// "token" defaults to $PASSLINK_TOKEN and "origin" is optional. Standard
// output gets a JSON array with one result per call:
// {"ok": true, "response": {...}, "headers": {...}} or
// {"ok": false, "code": 5, "codeName": "NotFound", "message": "...",
//  "id": "USER-404", "headers": {...}}; "headers" holds the CORS headers of
// the answer. The exit code is 0 when every call got an answer, 2 on bad
// usage (an unknown method included).

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { createFileRegistry, fromBinary, fromJson, toJson } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-node";

const SERVICE = "zitadel.user.v3alpha.UserService";
const ERROR_DETAIL = "zitadel.v1.ErrorDetail";

function fail(message) {
  process.stderr.write(`grpc-web-client.mjs: ${message}\n`);
  process.exit(2);
}

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    protoset: { type: "string" },
    http: { type: "string", default: "1.1" },
  },
});
if (!args.url || !args.protoset) fail("--url and --protoset are required");
if (args.http !== "1.1" && args.http !== "2") fail("--http is 1.1 or 2");

const registry = createFileRegistry(
  fromBinary(FileDescriptorSetSchema, readFileSync(args.protoset)),
);
const service = registry.getService(SERVICE) ?? fail(`${SERVICE} is not in the protoset`);
const errorDetail = registry.getMessage(ERROR_DETAIL) ?? fail(`${ERROR_DETAIL} is missing`);
const DEFAULT_METHOD = "CreateWebAuthNRegistrationLink";

const transport = createGrpcWebTransport({
  baseUrl: args.url,
  httpVersion: args.http,
  useBinaryFormat: true,
});
const client = createClient(service, transport);

let calls;
try {
  calls = JSON.parse(readFileSync(0, "utf8"));
} catch (err) {
  fail(`standard input is not JSON: ${err.message}`);
}
if (!Array.isArray(calls)) fail("standard input must be a JSON array of calls");

/** The CORS headers of an answer, which a browser would act on. */
function corsHeaders(headers) {
  const picked = {};
  for (const [name, value] of headers ?? []) {
    if (name.startsWith("access-control-") || name === "vary") picked[name] = value;
  }
  return picked;
}

async function call({
  method: name = DEFAULT_METHOD,
  token = process.env.PASSLINK_TOKEN,
  request,
  origin,
}) {
  const method =
    service.methods.find((m) => m.name === name) ?? fail(`${SERVICE} has no method ${name}`);
  const message = fromJson(method.input, request ?? {}, { registry });
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (origin) headers.origin = origin;
  let responseHeaders;
  try {
    const response = await client[method.localName](message, {
      headers,
      timeoutMs: 15000,
      onHeader: (h) => (responseHeaders = h),
    });
    return {
      ok: true,
      response: toJson(method.output, response, { registry }),
      headers: corsHeaders(responseHeaders),
    };
  } catch (err) {
    const error = ConnectError.from(err);
    const [detail] = error.findDetails(errorDetail);
    return {
      ok: false,
      code: error.code,
      codeName: Code[error.code],
      message: error.rawMessage,
      id: detail?.id ?? null,
      headers: corsHeaders(responseHeaders ?? error.metadata),
    };
  }
}

const results = [];
for (const one of calls) {
  results.push(await call(one));
}
process.stdout.write(`${JSON.stringify(results)}\n`);
