// Starts Swagger UI on /docs (server/routes_docs.py) from a served file rather than an inline
// script, so the page's CSP needs no 'unsafe-inline'. swagger-ui-bundle.js, loaded before this
// deferred script, defines the global SwaggerUIBundle.
const root = document.getElementById("swagger-ui");
window.ui = globalThis.SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  domNode: root,
  layout: "BaseLayout",
  presets: [globalThis.SwaggerUIBundle.presets.apis],
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  // The default validator is an external service (validator.swagger.io): the page stays on its origin.
  validatorUrl: null,
});
