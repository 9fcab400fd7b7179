// Starts Swagger UI on the API docs page (app/templates/swagger_ui.html). A file of its own, not
// an inline script, so the page's Content-Security-Policy allows scripts from this origin only
// (app/security_headers.py). The page puts its settings in the container's data-config.
(function () {
  "use strict";
  window.addEventListener("load", function () {
    var container = document.getElementById("swagger-ui-container");
    var config = JSON.parse(container.getAttribute("data-config"));
    config.dom_id = "#swagger-ui-container";
    window.ui = SwaggerUIBundle(config);
  });
})();
