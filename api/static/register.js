// The registration page of Passlink's default link.
//
// It reads the user, the code id and the code from the link: the code from
// the fragment (#code=...), which browsers never send to a server, or from
// the query string for templates that put it there. Loading the page does
// nothing with the code; only pressing the button starts the ceremony:
// StartWebAuthNRegistration, navigator.credentials.create, then
// VerifyWebAuthNRegistration.
'use strict';

(function () {
  const query = new URLSearchParams(window.location.search);
  const fragment = new URLSearchParams(window.location.hash.replace(/^#/, ''));
  const link = {
    userId: query.get('userID') || query.get('userId'),
    codeId: query.get('codeID') || query.get('codeId'),
    code: fragment.get('code') || query.get('code'),
  };

  const form = document.getElementById('register');
  const button = document.getElementById('start');
  const nameInput = document.getElementById('name');
  const status = document.getElementById('status');

  // What each error id of the API means to the person holding the link.
  const MESSAGES = {
    'CODE-EXPIRED': 'This link has expired. Ask for a new one.',
    'CODE-USED': 'This link was already used to set up a passkey. Ask for a new one if you ' +
      'need another passkey.',
    'CODE-BLOCKED': 'This link was blocked after too many wrong attempts. Ask for a new one.',
    'CODE-404': 'This link is not valid (anymore). Ask for a new one.',
    'CODE-FORMAT': 'The code in this link is damaged. Open the link from the email again.',
    'CODE-ID-INVALID': 'This link is damaged. Open it from the email again.',
    'PASSKEY-ALREADY-REGISTERED': 'This device already holds a passkey for your account.',
    'PASSKEY-CEREMONY-404': 'That took too long. Please try again.',
    'PASSKEY-DOMAIN-INVALID': 'This page is not at the address passkeys are set up for.',
  };

  function show(text, kind) {
    status.textContent = text;
    status.className = kind || '';
  }

  function toBase64Url(buffer) {
    const bytes = new Uint8Array(buffer);
    let text = '';
    for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function fromBase64Url(text) {
    const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
    const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
    const raw = atob(padded);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  // The API's errors carry a stable id; a wrong code also says how many
  // attempts are left.
  class ApiFailure extends Error {
    constructor(id, message) {
      super(message);
      this.id = id;
    }
  }

  // Paths resolve against this page's address, so the page also works when
  // the service sits under a path prefix (https://host/passlink/...).
  async function post(path, body) {
    const response = await fetch(new URL('../' + path, window.location.href), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
    });
    let payload = null;
    try {
      payload = await response.json();
    } catch (_) {
      payload = null;
    }
    if (!response.ok) {
      const detail = payload && payload.details && payload.details[0];
      throw new ApiFailure(detail ? detail.id : 'HTTP-' + response.status,
        detail ? detail.message : 'The service answered ' + response.status);
    }
    return payload;
  }

  function creationOptions(publicKey) {
    const options = Object.assign({}, publicKey);
    options.challenge = fromBase64Url(publicKey.challenge);
    options.user = Object.assign({}, publicKey.user, { id: fromBase64Url(publicKey.user.id) });
    if (publicKey.excludeCredentials) {
      options.excludeCredentials = publicKey.excludeCredentials.map(function (c) {
        return Object.assign({}, c, { id: fromBase64Url(c.id) });
      });
    }
    return options;
  }

  function credentialJson(credential) {
    const response = credential.response;
    return {
      id: credential.id,
      rawId: toBase64Url(credential.rawId),
      type: credential.type,
      response: {
        attestationObject: toBase64Url(response.attestationObject),
        clientDataJSON: toBase64Url(response.clientDataJSON),
        transports: typeof response.getTransports === 'function'
          ? response.getTransports() : undefined,
      },
      clientExtensionResults: credential.getClientExtensionResults(),
    };
  }

  function explain(error) {
    if (error instanceof ApiFailure) {
      if (error.id === 'CODE-INVALID') {
        return 'The code in this link is not valid. ' + error.message.replace(/^[^;]*;\s*/, '');
      }
      return MESSAGES[error.id] || error.message;
    }
    if (error && error.name === 'NotAllowedError') {
      return 'No passkey was created: it was cancelled or took too long. You can try again.';
    }
    if (error && error.name === 'InvalidStateError') {
      return MESSAGES['PASSKEY-ALREADY-REGISTERED'];
    }
    return 'Something went wrong: ' + (error && error.message ? error.message : error);
  }

  // Errors after which the same link cannot work; the button goes away.
  const FINAL = ['CODE-EXPIRED', 'CODE-USED', 'CODE-BLOCKED', 'CODE-404', 'CODE-FORMAT',
    'CODE-ID-INVALID', 'PASSKEY-DOMAIN-INVALID'];

  async function register(event) {
    event.preventDefault();
    const name = nameInput.value.trim();
    if (!name) {
      show('Give the passkey a name.', 'error');
      return;
    }
    button.disabled = true;
    show('Starting…');
    const user = encodeURIComponent(link.userId);
    try {
      const started = await post('v3alpha/users/' + user + '/webauthn', {
        domain: window.location.hostname,
        code: { id: link.codeId, code: link.code },
      });
      show('Follow your device’s prompt…');
      const credential = await navigator.credentials.create({
        publicKey: creationOptions(started.publicKeyCredentialCreationOptions.publicKey),
      });
      show('Saving…');
      const id = encodeURIComponent(started.webAuthNId);
      await post('v3alpha/users/' + user + '/webauthn/' + id, {
        publicKeyCredential: credentialJson(credential),
        webAuthNName: name,
      });
      form.hidden = true;
      show('Your passkey is set up. You can close this page.', 'success');
    } catch (error) {
      show(explain(error), 'error');
      if (error instanceof ApiFailure && FINAL.indexOf(error.id) >= 0) {
        form.hidden = true;
      } else {
        button.disabled = false;
      }
    }
  }

  function defaultName() {
    const platform = (navigator.userAgentData && navigator.userAgentData.platform) ||
      navigator.platform || '';
    return platform ? 'Passkey on ' + platform : 'My passkey';
  }

  if (!link.userId || !link.codeId || !link.code) {
    show('This link is incomplete. Open the link from the email again.', 'error');
    return;
  }
  if (!window.PublicKeyCredential || !navigator.credentials) {
    show('This browser cannot create passkeys. Try a current browser.', 'error');
    return;
  }
  nameInput.value = defaultName();
  form.hidden = false;
  form.addEventListener('submit', register);
})();
