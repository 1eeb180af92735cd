"""The knowledge-base pages at ``/kb``: incidents, postmortems, runbooks and search, read-only.

The pages hold incident details, so every one of them needs the token from ``WARROOM_KB_TOKEN``:
sent as ``Authorization: Bearer <token>`` or entered once in the login form, which sets an
HttpOnly, SameSite=Strict cookie holding an HMAC of the token (never the token itself). With no
token configured the pages are off. Everything shown is escaped; postmortem Markdown is rendered
and then cleaned by bleach to a small allowlist of tags, with only http(s) links.
"""

from __future__ import annotations

import hashlib
import hmac
import html
from typing import Any

import bleach
import markdown as md
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select

from knowledge import postmortems as store
from knowledge.models import MAX_ID, Incident, Runbook, TimelineEvent

__all__ = ["router", "render_markdown"]

router = APIRouter(prefix="/kb", tags=["knowledge base"], include_in_schema=False)

COOKIE = "warroom_kb"
_TAGS = {"a", "p", "h1", "h2", "h3", "h4", "ul", "ol", "li", "strong", "em", "code", "pre", "blockquote",
         "br", "hr", "table", "thead", "tbody", "tr", "th", "td", "input"}
_ATTRS = {"a": ["href", "title"], "input": ["type", "disabled", "checked"]}
_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                       "frame-ancestors 'none'; base-uri 'none'",
            "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_STYLE = ("body{font-family:system-ui,sans-serif;max-width:960px;margin:1em auto;padding:0 1em;color:#222}"
          "a{color:#0b5cad}table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:4px 8px;"
          "text-align:left}.muted{color:#777}nav a{margin-right:1em}.key{font-weight:bold}")


def e(value: object) -> str:
    """HTML-escape anything shown on a page."""
    return html.escape("" if value is None else str(value), quote=True)


def render_markdown(text: str) -> str:
    """Markdown to HTML, cleaned: unknown tags are escaped, links keep only http(s)/mailto."""
    raw = md.markdown(text or "", extensions=["sane_lists"], output_format="html")
    return bleach.clean(raw, tags=_TAGS, attributes=_ATTRS, protocols={"http", "https", "mailto"}, strip=False)


def _link(url: str | None, label: str) -> str:
    if url and url.startswith(("https://", "http://")):
        return f'<a href="{e(url)}" rel="noopener noreferrer">{e(label)}</a>'
    return e(label)


def _services(request: Request) -> Any:
    return request.app.state.services


def _expected(request: Request) -> str | None:
    token = _services(request).settings.kb_token
    if token is None or not token.get_secret_value():
        return None
    return str(token.get_secret_value())


def _cookie_value(token: str) -> str:
    return hmac.new(token.encode(), b"warroom-kb-session-v1", hashlib.sha256).hexdigest()


def _authorized(request: Request) -> bool:
    token = _expected(request)
    if token is None:
        return False
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
        return True
    cookie = request.cookies.get(COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), _cookie_value(token).encode())


def _page(title: str, body: str, status: int = 200, nav: bool = True) -> HTMLResponse:
    links = ('<nav><a href="/kb">Incidents</a><a href="/kb/postmortems">Postmortems</a>'
             '<a href="/kb/runbooks">Runbooks</a><a href="/kb/logout">Log out</a>'
             '<form action="/kb/search" method="get" style="display:inline">'
             '<input name="q" id="q" placeholder="Search" aria-label="Search"> <button id="go">Search</button>'
             '</form></nav>') if nav else ""
    doc = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)} · warroom</title>'
           f"<style>{_STYLE}</style></head><body>{links}<h1>{e(title)}</h1>{body}</body></html>")
    return HTMLResponse(doc, status_code=status, headers=_HEADERS)


def _login_form(next_path: str, error: str = "", status: int = 401) -> HTMLResponse:
    msg = f'<p class="error" id="error">{e(error)}</p>' if error else ""
    body = (f'{msg}<form method="post" action="/kb/login"><label>Access token '
            f'<input type="password" name="token" id="token" autocomplete="off"></label>'
            f'<input type="hidden" name="next" value="{e(next_path)}"> <button id="login">Log in</button></form>')
    return _page("warroom knowledge base: log in", body, status=status, nav=False)


def _guard(request: Request) -> HTMLResponse | None:
    if _expected(request) is None:
        return _page("Knowledge base disabled", "<p>Set WARROOM_KB_TOKEN to turn these pages on.</p>", 403, False)
    if not _authorized(request):
        nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return _login_form(nxt)
    return None


def _safe_next(path: str) -> str:
    return path if path.startswith("/kb") and "//" not in path and "\\" not in path else "/kb"


@router.get("/login")
def login_page(request: Request, next: str = "/kb") -> HTMLResponse:  # noqa: A002 - the usual name
    return _login_form(_safe_next(next), status=200)


@router.post("/login")
def login(request: Request, token: str = Form("", max_length=500), next: str = Form("/kb", max_length=500)
          ) -> Response:  # noqa: A002
    expected = _expected(request)
    if expected is None:
        return _page("Knowledge base disabled", "<p>Set WARROOM_KB_TOKEN to turn these pages on.</p>", 403, False)
    if not hmac.compare_digest(token.encode(), expected.encode()):
        return _login_form(_safe_next(next), "That token is not valid.")
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(COOKIE, _cookie_value(expected), httponly=True, samesite="strict",
                    secure=request.url.scheme == "https", path="/kb", max_age=12 * 3600)
    return resp


@router.get("/logout")
def logout() -> Response:
    resp = RedirectResponse("/kb/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/kb")
    return resp


def _incident_rows(incidents: list[Incident]) -> str:
    rows = "".join(f'<tr><td><a href="/kb/incidents/{i.id}">#{i.id}</a></td><td>{e(i.title)}</td>'
                   f"<td>{e(i.service_name)}</td><td>SEV{e(i.severity)}</td><td>{e(i.status)}</td>"
                   f"<td>{e(i.created_at.strftime('%Y-%m-%d %H:%M'))}</td></tr>" for i in incidents)
    return ("<table><tr><th>#</th><th>Title</th><th>Service</th><th>Severity</th><th>Status</th><th>Started</th>"
            f"</tr>{rows}</table>") if incidents else '<p class="muted">None.</p>'


@router.get("")
@router.get("/")
def index(request: Request) -> Response:
    if (denied := _guard(request)) is not None:
        return denied
    with _services(request).db.session() as s:
        incidents = list(s.scalars(select(Incident).order_by(Incident.created_at.desc()).limit(100)))
        body = _incident_rows(incidents)
    return _page("Incidents", body)


@router.get("/incidents/{incident_id}")
def incident(request: Request, incident_id: int) -> Response:
    if (denied := _guard(request)) is not None:
        return denied
    with _services(request).db.session() as s:
        inc = s.get(Incident, incident_id) if 1 <= incident_id <= MAX_ID else None
        if inc is None:
            return _page("Not found", f"<p>No incident #{incident_id}.</p>", 404)
        events = list(s.scalars(select(TimelineEvent).where(TimelineEvent.incident_id == incident_id)
                                .order_by(TimelineEvent.at, TimelineEvent.id).limit(5000)))
        pm = store.latest(s, incident_id=incident_id)
        items = "".join(
            f'<li class="{"key" if ev.key else ""}">{e(ev.at.strftime("%Y-%m-%d %H:%M"))} · {e(ev.kind)} · '
            f"{_link(ev.permalink, ev.text or ev.kind)} <span class='muted'>{e(ev.actor)}</span></li>"
            for ev in events)
        pm_link = (f'<p><a id="pm" href="/kb/postmortems/{incident_id}">Postmortem (v{pm.version}, '
                   f"{e(pm.status)})</a></p>" if pm else '<p class="muted">No postmortem yet.</p>')
        body = (f"<p>SEV{e(inc.severity)} · {e(inc.service_name)} · {e(inc.status)}</p><p>{e(inc.description)}</p>"
                f"{pm_link}<h2>Root cause</h2><p>{e(inc.root_cause) or 'Not recorded.'}</p>"
                f"<h2>Timeline</h2><ul>{items}</ul>")
        title = f"#{inc.id} {inc.title}"
    return _page(title, body)


@router.get("/postmortems")
def postmortems(request: Request) -> Response:
    if (denied := _guard(request)) is not None:
        return denied
    with _services(request).db.session() as s:
        rows = "".join(f'<tr><td><a href="/kb/postmortems/{p.incident_id}">#{p.incident_id}</a></td>'
                       f"<td>{e(p.title)}</td><td>v{p.version}</td><td>{e(p.status)}</td></tr>"
                       for p in store.list_latest(s))
    return _page("Postmortems", f"<table><tr><th>#</th><th>Title</th><th>Version</th><th>Status</th></tr>{rows}"
                                "</table>")


@router.get("/postmortems/{incident_id}")
def postmortem(request: Request, incident_id: int, version: int | None = Query(None, ge=1, le=100000)
               ) -> Response:
    if (denied := _guard(request)) is not None:
        return denied
    with _services(request).db.session() as s:
        versions = store.history(s, incident_id=incident_id) if 1 <= incident_id <= MAX_ID else []
        if not versions:
            return _page("Not found", f"<p>Incident #{incident_id} has no postmortem.</p>", 404)
        chosen = next((p for p in versions if p.version == version), None) if version else versions[-1]
        if chosen is None:
            return _page("Not found", f"<p>No version {version}.</p>", 404)
        hist = " · ".join(f'<a href="/kb/postmortems/{incident_id}?version={p.version}">v{p.version} '
                          f"{e(p.status)}</a>" for p in versions)
        body = (f'<p class="muted" id="meta">Version {chosen.version} · {e(chosen.status)} · writer '
                f'{e(chosen.writer)} · <a href="/kb/incidents/{incident_id}">incident</a></p>'
                f'<p class="muted">History: {hist}</p><article id="postmortem">{render_markdown(chosen.markdown)}'
                "</article>")
        title = chosen.title or f"Postmortem #{incident_id}"
    return _page(title, body)


@router.get("/runbooks")
def runbooks(request: Request) -> Response:
    if (denied := _guard(request)) is not None:
        return denied
    with _services(request).db.session() as s:
        newest = select(Runbook.slug, func.max(Runbook.version).label("v")).group_by(Runbook.slug).subquery()
        rows = list(s.scalars(select(Runbook).join(newest, (Runbook.slug == newest.c.slug)
                                                   & (Runbook.version == newest.c.v)).order_by(Runbook.slug)))
        body = "".join(f'<li><a href="/kb/runbooks/{e(r.slug)}">{e(r.slug)}</a> v{r.version}: {e(r.title)}</li>'
                       for r in rows)
    return _page("Runbooks", f"<ul>{body}</ul>" if body else '<p class="muted">None.</p>')


@router.get("/runbooks/{slug}")
def runbook(request: Request, slug: str) -> Response:
    if (denied := _guard(request)) is not None:
        return denied
    with _services(request).db.session() as s:
        r = s.scalar(select(Runbook).where(Runbook.slug == slug[:100]).order_by(Runbook.version.desc()).limit(1))
        if r is None:
            return _page("Not found", "<p>No such runbook.</p>", 404)
        steps = "".join(f"<li>{e(x if isinstance(x, str) else x.get('name') or x)}</li>" for x in r.steps or [])
        body = (f"<p>v{r.version} · risk {e(r.risk)} · services {e(', '.join(map(str, r.services or [])))}</p>"
                f"<ol>{steps}</ol>{render_markdown(r.body)}")
        title = r.title
    return _page(title, body)


def _hit_href(h: Any) -> str | None:
    if h.kind == "runbook":
        return f"/kb/runbooks/{h.id}"
    if h.incident_id is None:
        return None
    return f"/kb/{'postmortems' if h.kind == 'postmortem' else 'incidents'}/{int(h.incident_id)}"


def _best_matches(request: Request, q: str) -> str:
    """Hybrid (meaning + keywords) matches from the knowledge search, when it can answer."""
    from knowledge.search import search as kb_search
    from knowledge.search_types import SearchError

    if not q.strip():
        return ""
    try:
        hits = kb_search(_services(request).ctx, text=q, k=8)
    except SearchError:
        return ""
    items = "".join(
        f'<li>{e(h.kind)}: <a href="{e(href)}">{e(h.title)}</a> <span class="muted">{e(h.why)}</span></li>'
        if (href := _hit_href(h)) else f"<li>{e(h.kind)}: {e(h.title)}</li>" for h in hits)
    return f'<h2>Best matches</h2><ul id="best">{items}</ul>' if items else ""


@router.get("/search")
def search(request: Request, q: str = Query("", max_length=200)) -> Response:
    if (denied := _guard(request)) is not None:
        return denied
    best = _best_matches(request, q)
    with _services(request).db.session() as s:
        found = store.search(s, query=q)
        pms = "".join(f'<li><a href="/kb/postmortems/{p.incident_id}">{e(p.title)}</a> '
                      f'<span class="muted">v{p.version} {e(p.status)}</span></li>' for p in found["postmortems"])
        rbs = "".join(f'<li><a href="/kb/runbooks/{e(r.slug)}">{e(r.title)}</a></li>' for r in found["runbooks"])
        body = (f'<p id="query">Results for “{e(q)}”</p>{best}<h2>Postmortems (all words)</h2>'
                f'<ul id="pm-results">{pms}</ul>'
                f"<h2>Incidents</h2>{_incident_rows(found['incidents'])}<h2>Runbooks</h2><ul>{rbs}</ul>")
    return _page("Search", body)
