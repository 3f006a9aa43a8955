"""Views of the one session report: terminal, JSON, markdown, JUnit, CSV, GitLab, HTML."""
