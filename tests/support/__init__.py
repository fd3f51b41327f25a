"""What the tests share that is not a test: synthetic run folders, a headless Chromium
driver, report screenshots."""
