// ReDoc for /redoc, started from a file because the CSP allows no inline script. Its styles
// carry the page's nonce (from data-nonce), the only inline styles the CSP lets through.
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("redoc");
  Redoc.init("/openapi.json", { nonce: root.getAttribute("data-nonce"), disableSearch: true }, root);
});
