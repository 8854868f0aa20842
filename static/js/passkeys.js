// Passkeys (WebAuthn): add one on the settings page, sign in with one from /login, no password.
// The server makes the options and keeps each challenge (single use, 5 minutes); this file only
// turns base64url into bytes and back around navigator.credentials. No inline script, no eval.
(function () {
  "use strict";

  var UNSUPPORTED = "This browser cannot use passkeys. Use your password, or another browser.";
  var CANCELLED = "The passkey was not used (cancelled or timed out). Try again.";
  var FAILED = "Something went wrong with the passkey. Try again.";

  function supported() {
    return !!(window.PublicKeyCredential && navigator.credentials && navigator.credentials.create);
  }

  function toBytes(value) {
    var base64 = value.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var raw = atob(base64);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return { type: item.type, id: toBytes(item.id), transports: item.transports };
    });
  }

  function creationOptions(options) {
    var copy = Object.assign({}, options);
    copy.challenge = toBytes(options.challenge);
    copy.user = Object.assign({}, options.user, { id: toBytes(options.user.id) });
    copy.excludeCredentials = descriptors(options.excludeCredentials);
    return copy;
  }

  function requestOptions(options) {
    var copy = Object.assign({}, options);
    copy.challenge = toBytes(options.challenge);
    copy.allowCredentials = descriptors(options.allowCredentials);
    return copy;
  }

  function credentialJSON(credential) {
    var response = credential.response;
    var out = {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      clientExtensionResults: credential.getClientExtensionResults
        ? credential.getClientExtensionResults()
        : {},
      response: { clientDataJSON: toBase64url(response.clientDataJSON) },
    };
    if (credential.authenticatorAttachment) {
      out.authenticatorAttachment = credential.authenticatorAttachment;
    }
    if (response.attestationObject) {
      out.response.attestationObject = toBase64url(response.attestationObject);
      out.response.transports = response.getTransports ? response.getTransports() : [];
    }
    if (response.authenticatorData) {
      out.response.authenticatorData = toBase64url(response.authenticatorData);
      out.response.signature = toBase64url(response.signature);
      out.response.userHandle = response.userHandle ? toBase64url(response.userHandle) : null;
    }
    return out;
  }

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || "";
    } catch (e) {
      return "";
    }
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": csrfToken(),
      },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response
        .json()
        .catch(function () {
          return {};
        })
        .then(function (data) {
          if (!response.ok) throw new Error(data.message || FAILED);
          return data;
        });
    });
  }

  // Where the server says to go next; the same page (only a #fragment apart) is reloaded, since
  // assigning it would just scroll.
  function go(target) {
    var url = new URL(target, window.location.href);
    if (url.pathname + url.search === window.location.pathname + window.location.search) {
      window.location.hash = url.hash;
      window.location.reload();
    } else {
      window.location.assign(url.href);
    }
  }

  function say(container, text) {
    var message = container.querySelector("[data-passkey-message]");
    if (!message) return;
    message.textContent = text;
    message.hidden = !text;
  }

  function explain(container, error) {
    var cancelled = error && (error.name === "NotAllowedError" || error.name === "AbortError");
    say(container, cancelled ? CANCELLED : (error && error.message) || FAILED);
  }

  function setUpLogin(container) {
    var button = container.querySelector("[data-passkey-login-button]");
    if (!button) return;
    if (!supported()) {
      button.disabled = true;
      say(container, UNSUPPORTED);
      return;
    }
    button.addEventListener("click", function () {
      button.disabled = true;
      say(container, "");
      var handle;
      post("/login/passkey/options")
        .then(function (data) {
          handle = data.handle;
          return navigator.credentials.get({ publicKey: requestOptions(data.publicKey) });
        })
        .then(function (credential) {
          return post("/login/passkey", {
            handle: handle,
            credential: credentialJSON(credential),
            next: container.getAttribute("data-next") || "/",
          });
        })
        .then(function (data) {
          go(data.redirect || "/");
        })
        .catch(function (error) {
          button.disabled = false;
          explain(container, error);
        });
    });
  }

  function setUpRegister(form) {
    var button = form.querySelector("button[type=submit]");
    if (!supported()) {
      if (button) button.disabled = true;
      say(form, UNSUPPORTED);
      return;
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (button) button.disabled = true;
      say(form, "");
      var name = (form.querySelector("[name=passkey_name]") || {}).value || "";
      var handle;
      post("/settings/passkeys/options")
        .then(function (data) {
          handle = data.handle;
          return navigator.credentials.create({ publicKey: creationOptions(data.publicKey) });
        })
        .then(function (credential) {
          return post("/settings/passkeys", {
            handle: handle,
            name: name,
            credential: credentialJSON(credential),
          });
        })
        .then(function (data) {
          go(data.redirect || "/settings");
        })
        .catch(function (error) {
          if (button) button.disabled = false;
          explain(form, error);
        });
    });
  }

  document.querySelectorAll("[data-passkey-login]").forEach(setUpLogin);
  document.querySelectorAll("[data-passkey-register]").forEach(setUpRegister);
})();
