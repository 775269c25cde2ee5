"""The Image tab: text-to-image with live preview and gallery."""
