"""report.html: the Markdown report as one self-contained page."""

from __future__ import annotations

_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 0.88rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.5rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
th {{ background: #f3f3f3; }}
img {{ max-width: 100%; }}
code, pre {{ background: #f6f6f6; }}
pre {{ padding: 0.6rem; overflow-x: auto; }}
</style></head><body>
{body}
</body></html>
"""


def to_html(text: str, title: str) -> str:
    import markdown  # only when a report is written

    body = markdown.markdown(text, extensions=["tables", "fenced_code", "md_in_html"])
    return _HTML.format(title=title, body=body)
