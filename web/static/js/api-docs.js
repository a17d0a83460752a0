/**
 * Starts the API's page: Swagger UI on /docs, Redoc on /redoc (their scripts, loaded before this
 * module, come from the installed fastapi-standalone-docs package, not from a CDN).
 */

const swagger = document.getElementById("swagger-ui");
const redoc = document.getElementById("redoc");

if (swagger) {
  window.SwaggerUIBundle({
    url: swagger.dataset.openapiUrl,
    domNode: swagger,
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null, // the default would send the schema to an online validator
    presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
    layout: "BaseLayout",
  });
}

if (redoc) {
  // Redoc's search runs in a worker made from a blob: URL, which the pages' policy does not allow.
  window.Redoc.init(redoc.dataset.openapiUrl, { disableSearch: true, hideDownloadButton: false }, redoc);
}
