"""The app shell: entry point, main window, sessions panel, menus, dialogs, self-test."""
