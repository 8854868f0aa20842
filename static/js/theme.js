// Light, dark or system theme, applied before the page paints (loaded in <head>, not deferred).
// Only the theme choice is kept in localStorage: never any diary text.
(function () {
  "use strict";
  var KEY = "sd-theme";
  var root = document.documentElement;
  var media = window.matchMedia("(prefers-color-scheme: dark)");

  function stored() {
    try { return localStorage.getItem(KEY); } catch (e) { return null; }
  }
  // Signed in, the theme is an account preference (data-theme); otherwise this browser's choice.
  var account = root.getAttribute("data-theme-source") === "account";

  function choice() {
    var value = (!account && stored()) || root.getAttribute("data-theme") || "system";
    return ["light", "dark", "system"].indexOf(value) >= 0 ? value : "system";
  }
  function apply() {
    var current = choice();
    // data-theme says what the CSS follows without this script too (see tailwind.config.js).
    root.setAttribute("data-theme", current);
    root.classList.toggle("dark", current === "dark" || (current === "system" && media.matches));
    var buttons = document.querySelectorAll("[data-theme-choice]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].setAttribute("aria-pressed", String(buttons[i].getAttribute("data-theme-choice") === current));
    }
  }

  apply();
  media.addEventListener("change", apply);
  document.addEventListener("DOMContentLoaded", function () {
    apply();
    document.addEventListener("click", function (event) {
      var button = event.target.closest && event.target.closest("[data-theme-choice]");
      if (!button || account) return; // signed in, the button saves the account preference
      try { localStorage.setItem(KEY, button.getAttribute("data-theme-choice")); } catch (e) { /* private mode */ }
      apply();
    });
  });
})();
