"""The sync app's pages: the rules page (`rules_page`), its AI Assist (`assist`, with the
page where staff set up its endpoint), the export and import of rules (`transfer`), the
connection's Sync tab (`tab`) and what its buttons do (`tab_actions`).

The rules page's views stay importable from here (`from sync import views; views.rules`).
"""

from sync.views.rules_page import rules, rules_restore, rules_test_run, rules_version

__all__ = ["rules", "rules_restore", "rules_test_run", "rules_version"]
