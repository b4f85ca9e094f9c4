"""The back office's layout (issue 16, P5).

``{% nav_sidebar_key %}``: what Django's sidebar (``admin/app_list.html`` under
``admin/nav_sidebar.html``) reads of the page, as one string: each application and model the
user may see, with its name, links and whether the page is theirs. ``admin/nav_sidebar.html``
keeps the sidebar rendered for each key in the "template_fragments" cache: the same key gives
the same HTML, so a user with other permissions, another page or another language gets their
own. Rendered anew, the sidebar was a fifth of a back-office list page's time."""

from typing import Any

from django import template
from django.template.defaultfilters import urlencode

register = template.Library()


@register.simple_tag(takes_context=True)
def nav_sidebar_key(context: template.Context) -> str:
    apps = context.get("available_apps") or []
    request = context.get("request")
    path = urlencode(request.path) if request is not None else ""

    def current(url: Any) -> str:
        # The template's own test: ``{% if url in request.path|urlencode %}``.
        return "*" if url is not None and str(url) in path else ""

    parts = []
    for app in apps:
        parts.append(f"{app['app_label']}|{app['app_url']}|{app['name']}|{current(app['app_url'])}")
        parts.extend(
            f"{model['object_name']}|{model.get('admin_url') or ''}|{model.get('add_url') or ''}"
            f"|{model['name']}|{bool(model.get('view_only'))}|{current(model.get('admin_url'))}"
            for model in app["models"]
        )
    return "\n".join(parts)
