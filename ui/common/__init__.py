"""What every tab shares: engine bridge, worker base, tab base, parameters panel, widgets."""
