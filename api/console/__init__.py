"""The team console: a browser front end served by the API process itself."""
