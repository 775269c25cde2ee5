"""The Layout → HTML tab: description to HTML, sandboxed preview, versions."""
