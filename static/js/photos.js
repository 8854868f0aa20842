// The entry page's photos with JavaScript on: each chosen file is uploaded through the JSON
// API with a progress bar; move and remove go through the API too. Every form still works
// as a plain post without this file.
(function () {
  "use strict";
  var section = document.querySelector("[data-photos]");
  if (!section) return;
  var entryId = section.getAttribute("data-entry");

  function token(form) {
    var field = form.querySelector("input[name=csrftoken]");
    return field ? field.value : "";
  }

  function reload() {
    window.location.hash = "photos";
    window.location.reload();
  }

  function uploadOne(form, file, alt, done, progress) {
    var data = new FormData();
    data.append("file", file, file.name);
    if (alt) data.append("alt", alt);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/entries/" + entryId + "/photos");
    xhr.setRequestHeader("X-CSRFToken", token(form));
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", function (event) {
      if (event.lengthComputable) progress(event.loaded / event.total);
    });
    xhr.addEventListener("load", function () {
      var message = "";
      if (xhr.status !== 201) {
        try {
          message = JSON.parse(xhr.responseText).message || "";
        } catch (e) {
          message = "";
        }
        message = file.name + ": " + (message || "could not be added (" + xhr.status + ").");
      }
      done(message);
    });
    xhr.addEventListener("error", function () {
      done(file.name + ": the connection failed.");
    });
    xhr.send(data);
  }

  var upload = section.querySelector("[data-photo-upload]");
  if (upload) {
    upload.addEventListener("submit", function (event) {
      var input = upload.querySelector("input[type=file]");
      var files = input && input.files ? Array.prototype.slice.call(input.files) : [];
      if (!files.length || !window.FormData) return; // the plain form says what is missing
      event.preventDefault();
      var bar = upload.querySelector("[data-photo-progress]");
      var status = upload.querySelector("[data-photo-status]");
      var alt = (upload.querySelector("input[name=alt]") || {}).value || "";
      var problems = [];
      var index = 0;
      bar.classList.remove("hidden");
      upload.querySelector("button").disabled = true;
      function next() {
        if (index >= files.length) {
          if (problems.length) {
            status.textContent = problems.join(" ");
            upload.querySelector("button").disabled = false;
            if (problems.length < files.length) setTimeout(reload, 1500);
          } else {
            reload();
          }
          return;
        }
        var file = files[index];
        status.textContent = "Uploading " + (index + 1) + " of " + files.length + "…";
        uploadOne(
          upload,
          file,
          alt,
          function (problem) {
            if (problem) problems.push(problem);
            index += 1;
            next();
          },
          function (share) {
            bar.value = Math.round(((index + share) / files.length) * 100);
          },
        );
      }
      next();
    });
  }

  function api(form, method, url, body) {
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      headers: {
        "X-CSRFToken": token(form),
        "Content-Type": "application/json",
        Accept: "application/json",
      },
      body: body ? JSON.stringify(body) : undefined,
    });
  }

  section.addEventListener("submit", function (event) {
    var form = event.target;
    var item = form.closest("[data-photo]");
    if (!item) return;
    var id = item.getAttribute("data-photo");
    var call = null;
    if (form.hasAttribute("data-photo-delete")) {
      call = api(form, "DELETE", "/api/v1/photos/" + id);
    } else if (form.hasAttribute("data-photo-move")) {
      var position = parseInt(form.querySelector("input[name=position]").value, 10);
      call = api(form, "PATCH", "/api/v1/photos/" + id, { position: position });
    } else if (form.hasAttribute("data-photo-alt")) {
      call = api(form, "PATCH", "/api/v1/photos/" + id, {
        alt: form.querySelector("input[name=alt]").value,
      });
    }
    if (!call) return;
    event.preventDefault();
    call.then(function (response) {
      if (response.ok) reload();
      else form.submit();
    }, function () {
      form.submit();
    });
  });
})();
