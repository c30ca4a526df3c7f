"""Sources and destinations of transfer runs, behind one small interface (`connectors.base`)."""
