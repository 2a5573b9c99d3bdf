// Starts GraphiQL against this producer's /query. Served from the producer itself, so the
// page's Content-Security-Policy needs no inline script.
"use strict";
const fetcher = GraphiQL.createFetcher({ url: new URL("/query", window.location.href).href });
ReactDOM.createRoot(document.getElementById("graphiql")).render(
  React.createElement(GraphiQL, { fetcher, defaultEditorToolsVisibility: true })
);
