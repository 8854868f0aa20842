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
    setTimeout(function () {
      // Focus inside a notice that goes away moves on to what follows it, never to nowhere.
      var hadFocus = element.contains(document.activeElement);
      var next = element.nextElementSibling;
      element.remove();
      if (hadFocus) focusOn(next && next.matches("[tabindex], a, button, input") ? next : document.getElementById("main"));
    }, 500);
  }

  function focusOn(element) {
    if (!element) return;
    if (!element.hasAttribute("tabindex") && !element.matches("a[href], button, input, select, textarea, summary")) {
      element.setAttribute("tabindex", "-1");
    }
    element.focus();
  }

  // data-autohide="10000": the notice goes away after that many ms (6 s when no value).
  function autohide(scope) {
    var flashes = scope.querySelectorAll ? scope.querySelectorAll("[data-flash][data-autohide]") : [];
    var all = Array.prototype.slice.call(flashes);
    if (scope.matches && scope.matches("[data-flash][data-autohide]")) all.push(scope);
    all.forEach(function (flash) {
      if (flash.hasAttribute("data-timed")) return; // htmx:load also sees the first page
      flash.setAttribute("data-timed", "");
      setTimeout(function () { if (flash.isConnected) hide(flash); }, parseInt(flash.getAttribute("data-autohide"), 10) || 6000);
    });
  }

  function closeMenus(except) {
    var menus = document.querySelectorAll("details[data-menu][open]");
    for (var i = 0; i < menus.length; i++) {
      if (menus[i] !== except) menus[i].removeAttribute("open");
    }
  }

  function focusSearch() {
    var field = document.getElementById("q");
    if (field) { field.scrollIntoView({ block: "center" }); field.focus(); }
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
    var target = event.target.closest ? event.target : event.target.parentElement;
    var button = target.closest("[data-dismiss]");
    if (button) {
      var flash = button.closest("[data-flash]");
      if (flash) hide(flash);
    }
    // Menus close on a tap outside them and once one of their links is chosen.
    var menu = target.closest("details[data-menu]");
    closeMenus(menu);
    if (menu && target.closest("a[href]")) menu.removeAttribute("open");
    var search = target.closest("[data-focus-search]");
    if (search && document.getElementById("q")) {
      event.preventDefault();
      if (location.hash !== "#q") history.replaceState(null, "", "#q");
      focusSearch();
    }
  });

  // Escape closes an open menu (focus back on its button), else cancels an inline edit.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var open = event.target.closest && event.target.closest("details[data-menu][open]");
    open = open || document.querySelector("details[data-menu][open]");
    if (open) {
      open.removeAttribute("open");
      open.querySelector("summary").focus();
      event.preventDefault();
      return;
    }
    var editing = event.target.closest && event.target.closest("form[data-edit]");
    var cancel = editing && editing.querySelector("[data-cancel]");
    if (cancel) {
      event.preventDefault();
      cancel.click();
    }
  });

  // A page shown again from the back/forward cache starts with its menus closed.
  window.addEventListener("pageshow", function () { closeMenus(null); });

  document.addEventListener("DOMContentLoaded", function () {
    autohide(document);
    // data-focus is for swaps: a page load leaves focus where the browser puts it.
    var marked = document.querySelectorAll("[data-focus]");
    for (var i = 0; i < marked.length; i++) marked[i].removeAttribute("data-focus");
    if (location.hash === "#q") focusSearch();
  });
  document.addEventListener("htmx:load", function (event) { autohide(event.detail.elt); });

  document.addEventListener("htmx:responseError", function (event) {
    toast(messageFor(event.detail.xhr));
  });
  document.addEventListener("htmx:sendError", function () {
    toast("You appear to be offline. Check your connection and try again.");
  });
  // After a swap, focus lands on what changed: a form's first invalid field when it came back
  // with errors, else the element the server marked data-focus (the saved, restored or first
  // loaded entry, the undo notice, the edit form's title). An outerHTML swap replaces the
  // target, so look in the document when the old target is gone.
  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    var scope = target && target.isConnected ? target : document;
    var invalid = scope.querySelector('[aria-invalid="true"]');
    var marked = document.querySelectorAll("[data-focus]");
    var chosen = invalid || marked[marked.length - 1];
    for (var i = 0; i < marked.length; i++) marked[i].removeAttribute("data-focus");
    if (chosen) focusOn(chosen);
  });
})();
