"""Campaign and template routes: template sync and list, a template sent into a conversation,
and ``/api/v1/campaigns`` (supervisors and admins).

Routes join ``http.routes`` on import (``server/app.py`` imports this module). The CSV upload
reads its body as a stream (``raw_body``): rows are checked and staged as they arrive.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, Field

from chatcore.api import Body, Call, Cursor, Id, IdPath, Link, QueryParams, RawBody, Reply
from chatcore.errors import Unavailable
from chatcore.schemas import MessageRecordWire, Wire

from ..actions import campaigns as actions
from ..actions import wa_templates
from ..actions.campaign_sender import CampaignSender
from ..storage import campaigns as db
from .http import actor_of, routes, svc_of

CSV_CHUNK = 64 * 1024
TemplateName = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[a-z0-9_]+$")]
Language = Annotated[str, Field(min_length=2, max_length=16, pattern=r"^[A-Za-z]{2,3}(_[A-Za-z0-9]{2,4})?$",
                                description="as Meta names it: en, en_US, pt_BR")]
Column = Annotated[str, Field(min_length=1, max_length=64, pattern=r'^[^\x00-\x1f,"]*[^\x00-\x1f,"\s][^\x00-\x1f,"]*$',
                              description="a CSV column name")]
Param = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[^\x00]*\S[^\x00]*$")]
States = Literal["queued", "sending", "sent", "delivered", "read", "failed", "skipped", "unknown"]


def sender(call: Call[Any, Any, Any]) -> CampaignSender:
    service = svc_of(call.request).campaigns
    if not isinstance(service, CampaignSender):
        raise Unavailable("campaigns are not enabled")
    return service


# --- models ----------------------------------------------------------------------------------------

class SyncBody(Body):
    waba_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[0-9]+$",
                                description="the WhatsApp Business Account id; kept for later syncs")


class ParamCounts(Wire):
    header: int
    body: int


class TemplateView(Wire):
    id: int
    account_id: int
    name: str
    language: str
    status: str = Field(description="APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ... as Meta says")
    category: str
    components: list[Any]
    param_counts: ParamCounts
    synced_at: str | None


class Templates(Wire):
    templates: list[TemplateView]


class TemplateSend(Body):
    name: TemplateName
    language: Language
    parameters: list[Param] = Field(default_factory=list, max_length=100,
                                    description="the header's parameters, then the body's")


class MessageEnvelope(Wire):
    message: MessageRecordWire


class CampaignCreate(Body):
    account_id: Id
    name: str = Field(min_length=1, max_length=120, pattern=r"^[^\x00]*\S[^\x00]*$")
    template: TemplateName
    language: Language
    variables: list[Column] = Field(default_factory=list, max_length=100,
                                    description="CSV columns filling the template's parameters in order: "
                                                "the header's, then the body's")
    start_at: AwareDatetime | None = Field(default=None, description="RFC 3339; in the future")


class CampaignView(Wire):
    id: int
    account_id: int
    name: str
    template: str
    language: str
    variables: list[str]
    status: Literal["draft", "running", "paused", "completed", "cancelled"]
    pause_reason: str | None
    start_at: str | None
    created_by: int | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None


class Counts(Wire):
    total: int
    queued: int
    sending: int
    sent: int
    delivered: int
    read: int
    failed: int
    replied: int
    skipped: int
    unknown: int


class CampaignEnvelope(Wire):
    campaign: CampaignView


class CampaignDetail(Wire):
    campaign: CampaignView
    counts: Counts


class CampaignList(Wire):
    campaigns: list[CampaignView]
    next_cursor: int | None


class CampaignQuery(QueryParams):
    before: Cursor | None = Field(default=None, description="the previous page's next_cursor")
    limit: int = Field(default=50, ge=1, le=200)


class FailureGroup(Wire):
    code: int | None = Field(description="Meta's error code")
    title: str | None
    count: int


class Stats(Wire):
    campaign_id: int
    status: str
    counts: Counts
    failures: list[FailureGroup] = Field(description="failed recipients grouped by Meta's error code")


class PreviewRow(Wire):
    line: int
    phone: str
    text: str


class Preview(Wire):
    preview: list[PreviewRow]


class Uploaded(Wire):
    recipients: int
    preview: list[PreviewRow]


Source = Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[^\x00]*\S[^\x00]*$",
                              description="a fixed text, or one with {{contact.name}}, {{contact.email}}, "
                                          "{{contact.phone}}, {{contact.attributes.<key>}} filled per contact")]


class FromLabel(Body):
    label_id: Id
    variables: dict[Column, Source] = Field(
        default_factory=dict, max_length=100,
        description="what fills each of the campaign's variables; a variable not named here is filled from the "
                    "contact field of its name (name, email, phone), else the contact attribute of its name")


class LeftOut(Wire):
    contact_id: int
    name: str
    phone: str | None
    reason: Literal["no_phone", "opted_out", "duplicate_phone", "empty_value", "too_long"]
    variable: str | None = Field(description="the variable whose value was empty or too long")


class FromLabelResult(Wire):
    recipients: int
    preview: list[PreviewRow]
    left_out: list[LeftOut] = Field(description="contacts not taken, the first 100")
    left_out_count: int


class RecipientError(Wire):
    code: int | None
    title: str | None


class RecipientView(Wire):
    id: int
    line: int
    phone: str
    params: list[str]
    state: States
    attempts: int
    wamid: str | None
    sent_at: str | None
    replied_at: str | None
    error: RecipientError | None
    reason: str | None
    updated_at: str | None


class RecipientQuery(QueryParams):
    state: States | None = None
    after: Cursor = Field(default=0, description="the previous page's next_cursor")
    limit: int = Field(default=100, ge=1, le=1000)


class Recipients(Wire):
    recipients: list[RecipientView]
    next_cursor: int | None


# --- templates -------------------------------------------------------------------------------------

@routes.post("/api/v1/wa/accounts/{id}/templates/sync", "Read the number's message templates from the Graph API",
             auth="supervisor", body=SyncBody, responses={200: Templates},
             links={200: {"Templates": Link("list_templates", id="$request.path.id")}},
             description="Pages through GET /{waba-id}/message_templates (each page bounded by a timeout); the "
                         "stored list becomes exactly Meta's. waba_id is needed once (kept once a sync succeeded). "
                         "A list Meta refuses (unknown WABA, token without access): 400 invalid, field waba_id; "
                         "Meta unreachable or failing: 503. Audited (template.sync).")
async def sync_templates(call: Call[SyncBody, None, IdPath]) -> Reply:
    templates = await wa_templates.do_sync(svc_of(call.request), sender(call).api, actor_of(call), call.path.id,
                                           call.body.waba_id)
    return Reply({"templates": [t.to_wire() for t in templates]})


@routes.get("/api/v1/wa/accounts/{id}/templates", "The number's templates as last synced", auth="staff",
            responses={200: Templates})
async def list_templates(call: Call[None, None, IdPath]) -> Reply:
    templates = await db.list_templates(svc_of(call.request).pool, call.path.id)
    return Reply({"templates": [t.to_wire() for t in templates]})


@routes.post("/api/v1/wa/conversations/{id}/template", "Send an approved template into the conversation",
             auth="staff", body=TemplateSend, responses={201: MessageEnvelope},
             description="The way to write to a contact outside the 24-hour window. The parameters must fill the "
                         "template exactly (else 400 invalid with reason parameter_count, expected and given; "
                         "nothing is stored or sent). Stored as the caller's message with meta.template, sent "
                         "through the outbox, audited (template.send).")
async def send_template(call: Call[TemplateSend, None, IdPath]) -> Reply:
    b = call.body
    msg = await wa_templates.do_send_template(svc_of(call.request), actor_of(call), call.path.id, b.name, b.language,
                                              b.parameters)
    return Reply({"message": msg}, 201)


# --- campaigns -------------------------------------------------------------------------------------

LINKS = {"Get": Link("get_campaign", id="$response.body#/campaign/id"),
         "Stats": Link("campaign_stats", id="$response.body#/campaign/id"),
         "Recipients": Link("campaign_recipients", id="$response.body#/campaign/id"),
         "Start": Link("campaign_start", id="$response.body#/campaign/id"),
         "Cancel": Link("campaign_cancel", id="$response.body#/campaign/id"),
         "Delete": Link("delete_campaign", id="$response.body#/campaign/id")}


@routes.post("/api/v1/campaigns", "Create a campaign (a draft): number, approved template, variable columns",
             auth="supervisor", body=CampaignCreate, responses={201: CampaignEnvelope}, links={201: LINKS},
             description="The template must be synced and APPROVED and take exactly len(variables) parameters "
                         "(400 invalid, reason parameter_count); start_at in the past is 400. Audited.")
async def create_campaign(call: Call[CampaignCreate, None, None]) -> Reply:
    b = call.body
    campaign = await actions.do_create(svc_of(call.request), actor_of(call), b.account_id, b.name, b.template,
                                       b.language, list(b.variables), b.start_at)
    return Reply({"campaign": campaign.to_wire()}, 201)


@routes.get("/api/v1/campaigns", "Campaigns, newest first", auth="supervisor", query=CampaignQuery,
            responses={200: CampaignList})
async def list_campaigns(call: Call[None, CampaignQuery, None]) -> Reply:
    q = call.query
    found = await db.list_campaigns(svc_of(call.request).pool, q.limit, q.before)
    return Reply({"campaigns": [c.to_wire() for c in found],
                  "next_cursor": found[-1].id if len(found) == q.limit else None})


@routes.get("/api/v1/campaigns/{id}", "A campaign and its counts", auth="supervisor",
            responses={200: CampaignDetail})
async def get_campaign(call: Call[None, None, IdPath]) -> Reply:
    svc = svc_of(call.request)
    campaign = await actions.get(svc, call.path.id)
    return Reply({"campaign": campaign.to_wire(), "counts": await db.counts(svc.pool, campaign.id)})


@routes.get("/api/v1/campaigns/{id}/stats", "A campaign's counts and its failures grouped by Meta's error code",
            auth="supervisor", responses={200: Stats})
async def campaign_stats(call: Call[None, None, IdPath]) -> Reply:
    return Reply(await actions.stats(svc_of(call.request), call.path.id))


@routes.put("/api/v1/campaigns/{id}/recipients", "Upload the recipients of a draft as CSV (phone + variable columns)",
            auth="supervisor", raw_body=RawBody("text/csv", {"type": "string"}), responses={200: Uploaded},
            description="UTF-8 CSV, first line the header: a phone column and every column the campaign's "
                        "variables name. Phones are normalised to E.164 (a country code is required). Bad header, "
                        "encoding, phones, empty values or duplicate phones: 400 invalid with details.problems "
                        "[{line, column, message}] and nothing stored; more rows than CAMPAIGN_MAX_RECIPIENTS: 413. "
                        "Replaces earlier recipients; answers the count and a preview of the first messages.")
async def upload_recipients(call: Call[None, None, IdPath]) -> Reply:
    result = await actions.do_upload(svc_of(call.request), actor_of(call), call.path.id,
                                     call.request.content.iter_chunked(CSV_CHUNK))
    return Reply(result)


@routes.put("/api/v1/campaigns/{id}/recipients/from-label",
            "Set the recipients of a draft to the contacts carrying a label", auth="supervisor", body=FromLabel,
            responses={200: FromLabelResult},
            description="Each contact with the label and a phone becomes a recipient; the campaign's variables are "
                        "filled per contact (variables: {column: text with {{contact.name}}-like fields, or a fixed "
                        "text}). Contacts without a phone, opted out of the number, with a phone another contact "
                        "already has, or whose value comes out empty or over 1024 characters are left out and listed "
                        "(left_out). None left: 400 invalid (reason label), nothing stored. Unknown label or "
                        "campaign: 404; not a draft: 409; more than CAMPAIGN_MAX_RECIPIENTS: 413. Replaces earlier "
                        "recipients. Audited (campaign.recipients).")
async def recipients_from_label(call: Call[FromLabel, None, IdPath]) -> Reply:
    b = call.body
    return Reply(await actions.do_from_label(svc_of(call.request), actor_of(call), call.path.id, b.label_id,
                                             dict(b.variables)))


@routes.get("/api/v1/campaigns/{id}/preview", "The first messages as recipients will read them", auth="supervisor",
            responses={200: Preview})
async def campaign_preview(call: Call[None, None, IdPath]) -> Reply:
    return Reply({"preview": await actions.preview(svc_of(call.request), call.path.id)})


@routes.get("/api/v1/campaigns/{id}/recipients", "A campaign's recipients, by state", auth="supervisor",
            query=RecipientQuery, responses={200: Recipients})
async def campaign_recipients(call: Call[None, RecipientQuery, IdPath]) -> Reply:
    svc, q = svc_of(call.request), call.query
    await actions.get(svc, call.path.id)
    rows = await db.list_recipients(svc.pool, call.path.id, q.state, q.after, q.limit)
    return Reply({"recipients": [db.recipient_wire(r) for r in rows],
                  "next_cursor": rows[-1]["id"] if len(rows) == q.limit else None})


def _move_route(action: str, summary: str, description: str) -> None:
    async def handler(call: Call[None, None, IdPath]) -> Reply:
        campaign = await actions.do_move(svc_of(call.request), actor_of(call), call.path.id, action)
        return Reply({"campaign": campaign.to_wire()})

    handler.__name__ = f"campaign_{action}"
    routes.post(f"/api/v1/campaigns/{{id}}/{action}", summary, auth="supervisor", responses={200: CampaignEnvelope},
                description=description + " Audited.")(handler)


_move_route("start", "Start sending (a draft with recipients)",
            "409 conflict unless the campaign is a draft; 400 without recipients or when the template is no longer "
            "approved or no longer takes the variables. Sends begin at start_at when it was set.")
_move_route("pause", "Pause sending", "409 unless running. Sends under way finish.")
_move_route("resume", "Resume a paused campaign", "409 unless paused.")
_move_route("cancel", "Cancel: nothing more is sent",
            "409 when completed or cancelled. Queued recipients become skipped (reason cancelled).")


@routes.delete("/api/v1/campaigns/{id}", "Delete a campaign that is not running", auth="supervisor",
               responses={204: None}, description="409 while running. Audited.")
async def delete_campaign(call: Call[None, None, IdPath]) -> Reply:
    await actions.do_delete(svc_of(call.request), actor_of(call), call.path.id)
    return Reply(None, 204)


EXPORT_COLUMNS = ("line", "phone", "state", "reason", "error_code", "error_title", "wamid", "sent_at", "replied_at")


@routes.get("/api/v1/campaigns/{id}/export", "The results as CSV, one row per recipient (streamed)",
            auth="supervisor", responses={200: "text/csv"})
async def export_campaign(call: Call[None, None, IdPath]) -> web.StreamResponse:
    svc = svc_of(call.request)
    campaign = await actions.get(svc, call.path.id)
    resp = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="campaign-{campaign.id}.csv"'})
    await resp.prepare(call.request)
    await resp.write(_csv_line(EXPORT_COLUMNS))
    async for rows in actions.export_rows(svc.pool, campaign.id):
        await resp.write(b"".join(_csv_line([r["line"], r["phone"], r["state"], r["reason"], r["error_code"],
                                             r["error_title"], r["wamid"], _iso(r["sent_at"]), _iso(r["replied_at"])])
                                  for r in rows))
    await resp.write_eof()
    return resp


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""


def _csv_line(values: Any) -> bytes:
    out = io.StringIO()
    # a cell a spreadsheet would run as a formula is quoted with a leading apostrophe
    csv.writer(out).writerow(["'" + v if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") and not
                              v[1:].isdigit() else ("" if v is None else v) for v in values])
    return out.getvalue().encode()
