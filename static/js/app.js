// Small behaviours for every page: dismissible flashes, error toasts for HTMX, focus after swaps.
// No inline scripts, no eval: everything here runs under script-src 'self'.
(function () {
  "use strict";

  var MESSAGES = {
    403: "Your session expired. Reload the page and try again.",
    413: "That is too large to send.",
    429: "Too many attempts. Please wait and try again.",
    503: "The service is unavailable right now. Please try again in a moment.",
  };
  var FALLBACK = "Something went wrong. Please try again.";

  function hide(element) {
    element.classList.add("flash-hiding");
    setTimeout(function () { element.remove(); }, 500);
  }

  function toast(text) {
    var region = document.getElementById("toasts");
    if (!region) return;
    var box = document.createElement("div");
    box.className = "toast";
    box.setAttribute("role", "status");
    var message = document.createElement("p");
    message.textContent = text;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "font-semibold";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "✕";
    close.addEventListener("click", function () { box.remove(); });
    box.appendChild(message);
    box.appendChild(close);
    region.appendChild(box);
    setTimeout(function () { box.remove(); }, 8000);
  }

  function messageFor(xhr) {
    try {
      var body = JSON.parse(xhr.responseText);
      if (body && typeof body.message === "string") return body.message;
    } catch (e) { /* not JSON */ }
    return MESSAGES[xhr.status] || FALLBACK;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-dismiss]");
    if (button) {
      var flash = button.closest("[data-flash]");
      if (flash) hide(flash);
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var flashes = document.querySelectorAll("[data-flash][data-autohide]");
    for (var i = 0; i < flashes.length; i++) {
      (function (flash) { setTimeout(function () { hide(flash); }, 6000); })(flashes[i]);
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    toast(messageFor(event.detail.xhr));
  });
  document.addEventListener("htmx:sendError", function () {
    toast("You appear to be offline. Check your connection and try again.");
  });
  // After a form comes back with errors, focus its first invalid field. An outerHTML swap
  // replaces the target, so look in the document when the old target is gone.
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    var scope = target && target.isConnected ? target : document;
    var invalid = scope.querySelector('[aria-invalid="true"]');
    if (invalid) invalid.focus();
  });
})();
