//! Browser end-to-end tests (issue 3): real headless Chromium with a virtual authenticator.
