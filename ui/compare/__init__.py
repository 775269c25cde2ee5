"""The Compare tab: text columns, image X/Y grid, layout variants."""
