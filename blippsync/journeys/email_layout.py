"""The HTML document around a rendered email body: simple, readable everywhere.

Inline styles only (many mail clients drop <style>), one centred column, system fonts,
and a footer with the business's postal address and the unsubscribe link. Everything
interpolated here is escaped; the body arrives as already-safe Markup.
"""

from __future__ import annotations

from markupsafe import Markup, escape

_DOCUMENT = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
</head>
<body style="margin:0;padding:0;background:#f6f6f6;">
<div style="max-width:600px;margin:0 auto;padding:24px;background:#ffffff;\
font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:16px;\
line-height:1.5;color:#222222;">
{body}
<hr style="border:none;border-top:1px solid #dddddd;margin:24px 0 12px;">
<p style="font-size:12px;line-height:1.4;color:#666666;">{footer}</p>
</div>
</body>
</html>
"""


def html_document(subject: str, body: Markup, business: str, address: str | None,
                  unsubscribe_link: str | None) -> str:
    footer = escape(business) + (Markup(", ") + escape(address) if address else "")
    if unsubscribe_link:
        footer += Markup('<br><a href="{0}" style="color:#666666;">Unsubscribe</a> from '
                         "{1}'s emails.").format(unsubscribe_link, business)
    return _DOCUMENT.format(title=escape(subject), body=body,
                            footer=footer)
