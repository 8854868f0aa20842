// The browser's time zone, for the pages that ask for one (sign-up and settings).
// Sign-up: fills the hidden `timezone` field, so "today" is the user's from the first win.
// Settings: offers the browser's zone when it differs (one tap saves it) and adds a search box
// to the grouped picker. Without JavaScript the pages work as before (UTC, the plain picker).
(function () {
  "use strict";

  function browserZone() {
    try {
      return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (e) {
      return "";
    }
  }

  function hasOption(select, zone) {
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].value === zone) return true;
    }
    return false;
  }

  function fillSignUp(root, zone) {
    var fields = root.querySelectorAll("input[data-browser-timezone]");
    for (var i = 0; i < fields.length; i++) {
      if (!fields[i].value) fields[i].value = zone;
    }
  }

  function offer(picker, select, zone) {
    var box = picker.querySelector("[data-tz-offer]");
    if (!box || !zone || zone === select.getAttribute("data-tz-current") || !hasOption(select, zone)) return;
    box.querySelector("[data-tz-browser]").textContent = zone;
    box.hidden = false;
    box.querySelector("[data-tz-use]").addEventListener("click", function () {
      select.value = zone;
      if (select.form) select.form.requestSubmit();
    });
  }

  function search(picker, select) {
    var input = picker.querySelector("[data-tz-search]");
    if (!input) return;
    var list = document.createElement("datalist");
    list.id = input.getAttribute("list");
    for (var i = 0; i < select.options.length; i++) {
      var option = document.createElement("option");
      option.value = select.options[i].value;
      list.appendChild(option);
    }
    picker.appendChild(list);
    input.hidden = false;
    // A full name (Asia/Tokyo) or just the place (tokyo, new york) picks the zone.
    input.addEventListener("change", function () {
      var wanted = input.value.trim().replace(/ /g, "_").toLowerCase();
      var place = null;
      for (var j = 0; j < select.options.length; j++) {
        var name = select.options[j].value.toLowerCase();
        if (name === wanted) {
          select.value = select.options[j].value;
          return;
        }
        if (place === null && name.slice(name.lastIndexOf("/") + 1) === wanted) place = j;
      }
      if (place !== null) select.value = select.options[place].value;
    });
  }

  function setUp(root) {
    var zone = browserZone();
    if (zone) fillSignUp(root, zone);
    var pickers = root.querySelectorAll("[data-tz-picker]");
    for (var i = 0; i < pickers.length; i++) {
      var select = pickers[i].querySelector("select");
      if (!select || pickers[i].hasAttribute("data-tz-ready")) continue;
      pickers[i].setAttribute("data-tz-ready", "");
      search(pickers[i], select);
      offer(pickers[i], select, zone);
    }
  }

  document.addEventListener("DOMContentLoaded", function () { setUp(document); });
  // A form that comes back from the server (errors inline) is new markup: set it up again.
  document.addEventListener("htmx:afterSwap", function () { setUp(document); });
})();
