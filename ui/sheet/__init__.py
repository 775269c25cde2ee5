"""The Sheet tab: grid, fill with confidences, evaluate accuracy against k examples."""
