"""REST routes declared with pydantic models: one statement that validates, types and documents.

Both HTTP services (chat-server's ``/api/v1``, chat-archive's ``/archive/v1``) declare every
route here. A route names pydantic 2 models for its JSON body, its query parameters, its path
parameters and its responses (one per status), and its auth level. The same models

- parse and validate each request before the handler runs (a failure answers 400 ``invalid``
  with ``details.field``; a path id that is not an integer in 1..2^63-1 answers 404
  ``not_found``, as for a row that does not exist), and hand the handler typed values;
- generate the OpenAPI 3.1 document (``components/schemas`` with ``$ref``s), so a length,
  pattern, range or enum is stated once and is true for both.

Declaring a route (``server/transport/http.py`` has many examples)::

    routes = RouteTable()

    class CreateRoom(Body):                      # Body: strict JSON, unknown fields refused
        name: RoomName                           # constraints in the type (Field / Annotated)
        kind: Literal["public", "private"]

    class RoomPath(PathParams):
        id: Id                                   # 1..2^63-1; anything else -> 404

    @routes.post("/api/v1/rooms/{id}/things", "Add a thing", body=CreateRoom, params=RoomPath,
                 responses={201: RoomEnvelope}, links={201: {"GetRoom": Link("get_room", id="$response.body#/room/id")}})
    async def add_thing(call: Call[CreateRoom, None, RoomPath]) -> Reply:
        user = call.principal                     # what the service's authenticator returned
        ...
        return Reply(RoomEnvelope(...) or a plain dict, 201)

``auth`` is ``"user"`` (the default), ``"staff"``, ``"supervisor"``, ``"admin"`` or ``None``; the service gives
``mount`` the function that checks a bearer token for a level. A handler may return a
``web.StreamResponse`` itself (plain text, a download); routes that read their body raw (a
signed webhook) declare it with ``raw_body`` and call ``await call.request.read()``. A status a
handler returns must be declared in ``responses``; every error answers ``ErrorBody``
(``default``). ``links`` lead from a response to the operations that take its ids (OpenAPI
links: schemathesis's stateful phase follows them). A model whose bounds come from the
configuration is given as a function of the service's settings (``ModelFactory``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Generic, Literal, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.json_schema import models_json_schema

from .errors import Invalid, NotFound, TooLarge
from .schemas import ErrorBody

INT64_MAX = 2**63 - 1  # PostgreSQL bigint: every id and cursor column


def _integral(value: Any) -> Any:
    # JSON has one number type: 7.0 is the integer 7 (JSON Schema agrees); 7.5 stays refused
    return int(value) if isinstance(value, float) and value.is_integer() else value


Int = Annotated[int, BeforeValidator(_integral)]
Id = Annotated[int, Field(ge=1, le=INT64_MAX, description="a positive 64-bit id"), BeforeValidator(_integral)]
Cursor = Annotated[int, Field(ge=0, le=INT64_MAX), BeforeValidator(_integral)]

AuthLevel = Literal["user", "staff", "supervisor", "admin"] | None
Authenticator = Callable[[web.Request, str], Awaitable[Any]]
ModelFactory = Callable[[Any], type[BaseModel]]
ModelSpec = type[BaseModel] | ModelFactory

B = TypeVar("B")
Q = TypeVar("Q")
P = TypeVar("P")

_REF = "#/components/schemas/{model}"


class Body(BaseModel):
    """A JSON request body: JSON types as declared (no ``"1"`` for 1), unknown fields refused.
    Patterns use Python's ``re``, the engine the actions' checks use (same ``\\s`` and ``\\d``)."""

    model_config = ConfigDict(extra="forbid", strict=True, regex_engine="python-re")


class QueryParams(BaseModel):
    """Query parameters: strings converted to the declared types; unknown names are ignored."""

    model_config = ConfigDict(extra="ignore", regex_engine="python-re", populate_by_name=True)


class PathParams(BaseModel):
    """Path parameters; any that does not validate answers 404 (``not_found``)."""

    model_config = ConfigDict(extra="ignore")


class IdPath(PathParams):
    id: Id


@dataclass(frozen=True)
class Link:
    """An OpenAPI link: the operation ``operation_id`` with its parameters taken from this
    response (runtime expressions, e.g. ``$response.body#/room/id``)."""

    operation_id: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    request_body: Any = None
    description: str = ""

    def __init__(self, operation_id: str, description: str = "", request_body: Any = None, **parameters: str) -> None:
        object.__setattr__(self, "operation_id", operation_id)
        object.__setattr__(self, "parameters", parameters)
        object.__setattr__(self, "request_body", request_body)
        object.__setattr__(self, "description", description)


@dataclass(frozen=True)
class RawBody:
    """A request body the handler reads itself (e.g. to check a signature over its bytes)."""

    media_type: str
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class Reply:
    """A handler's answer: a model or JSON-ready data, and its (declared) status."""

    data: Any = None
    status: int = 200


@dataclass(frozen=True)
class Call(Generic[B, Q, P]):
    """What a handler gets: the validated body, query and path models and the principal."""

    request: web.Request
    body: B
    query: Q
    path: P
    principal: Any


Handler = Callable[[Call[Any, Any, Any]], Awaitable[Reply | web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    handler: Handler
    operation_id: str
    auth: AuthLevel = "user"
    body: ModelSpec | None = None
    query: ModelSpec | None = None
    path_params: type[BaseModel] | None = None
    responses: Mapping[int, type[BaseModel] | str | None] = field(default_factory=dict)
    links: Mapping[int, Mapping[str, Link]] = field(default_factory=dict)
    description: str = ""
    raw_body: RawBody | None = None
    tags: tuple[str, ...] = ()


class RouteTable:
    """The routes of one module, registered by decorator, in declaration order."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(self, method: str, path: str, summary: str, *, auth: AuthLevel = "user",
              body: ModelSpec | None = None, query: ModelSpec | None = None, params: type[BaseModel] | None = None,
              responses: Mapping[int, type[BaseModel] | str | None] | None = None,
              links: Mapping[int, Mapping[str, Link]] | None = None, description: str = "",
              raw_body: RawBody | None = None, operation_id: str | None = None,
              tags: tuple[str, ...] = ()) -> Callable[[Handler], Handler]:
        """``responses``: status -> response model, ``None`` (no body) or a media type
        (a body that is not JSON, which the handler writes itself)."""
        names = re.findall(r"{(\w+)}", path)
        if names and params is None:
            params = IdPath if names == ["id"] else None
        if names and params is None:
            raise TypeError(f"{method} {path}: declare params= for its path parameters")

        def register(fn: Handler) -> Handler:
            self.routes.append(Route(method.upper(), path, summary, fn, operation_id or fn.__name__, auth, body, query,
                                     params, dict(responses or {200: None}), dict(links or {}), description,
                                     raw_body, tags))
            return fn

        return register

    def get(self, path: str, summary: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, summary, **kw)

    def post(self, path: str, summary: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, summary, **kw)

    def put(self, path: str, summary: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, summary, **kw)

    def patch(self, path: str, summary: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, summary, **kw)

    def delete(self, path: str, summary: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, summary, **kw)


def _model(spec: ModelSpec | None, settings: Any) -> type[BaseModel] | None:
    if spec is None or isinstance(spec, type):
        return spec
    return spec(settings)


def _field_of(err: Any) -> str:
    return ".".join(str(p) for p in err["loc"]) or "body"


def invalid_from(exc: ValidationError, where: str) -> Invalid:
    """The first problem, named by its field (``details.field``), as the actions name theirs."""
    err = exc.errors(include_url=False)[0]
    name = _field_of(err) if err["loc"] else where
    return Invalid(f"{name}: {err['msg']}", field=name)


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    if request.content_length is not None and request.content_length > max_bytes:
        raise TooLarge(f"request body is larger than {max_bytes} bytes")
    raw = await request.read()
    if len(raw) > max_bytes:
        raise TooLarge(f"request body is larger than {max_bytes} bytes")
    return raw


@dataclass(frozen=True)
class Mounted:
    """A route with its models resolved for one service's settings."""

    route: Route
    body: type[BaseModel] | None
    query: type[BaseModel] | None


def _handler(m: Mounted, authenticate: Authenticator, max_body_bytes: int) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    route = m.route
    declared = set(route.responses)

    async def handle(request: web.Request) -> web.StreamResponse:
        path_values: Any = None
        if route.path_params is not None:
            try:
                path_values = route.path_params.model_validate(dict(request.match_info))
            except ValidationError:
                raise NotFound("not found") from None
        principal = await authenticate(request, route.auth) if route.auth is not None else None
        query_values: Any = None
        if m.query is not None:
            try:
                query_values = m.query.model_validate(dict(request.query))
            except ValidationError as exc:
                raise invalid_from(exc, "query") from None
        body_values: Any = None
        if m.body is not None:
            raw = await read_body(request, max_body_bytes)
            try:
                body_values = m.body.model_validate_json(raw or b"{}")
            except ValidationError as exc:
                if exc.errors()[0]["type"] == "json_invalid":
                    raise Invalid("body is not valid JSON", field="body") from None
                raise invalid_from(exc, "body") from None
        result = await route.handler(Call(request, body_values, query_values, path_values, principal))
        if isinstance(result, web.StreamResponse):
            return result
        if result.status not in declared:
            raise RuntimeError(f"{route.method} {route.path} answered undeclared status {result.status}")
        if result.data is None:
            return web.Response(status=result.status)
        data = result.data.model_dump(mode="json", exclude_none=False) if isinstance(result.data, BaseModel) else result.data
        return web.Response(body=orjson.dumps(data), status=result.status, content_type="application/json")

    return handle


def _router_path(route: Route) -> str:
    """The path as aiohttp matches it: an integer path parameter matches digits only, so a
    fixed path next to it (``/rooms/directory`` beside ``/rooms/{id}``) is not taken for an id,
    and a method that path lacks answers 405 rather than a 404 from the id's validation."""
    if route.path_params is None:
        return route.path
    fields = route.path_params.model_fields

    def constrain(m: re.Match[str]) -> str:
        f = fields.get(m.group(1))
        return f"{{{m.group(1)}:\\d+}}" if f is not None and f.annotation is int else m.group(0)

    return re.sub(r"{(\w+)}", constrain, route.path)


def mount(app: web.Application, routes: list[Route], authenticate: Authenticator, *, settings: Any = None,
          max_body_bytes: int = 64 * 1024, title: str, description: str = "", spec_path: str) -> dict[str, Any]:
    """Add ``routes`` to ``app`` and serve their OpenAPI document at ``spec_path``; returns it."""
    mounted = [Mounted(r, _model(r.body, settings), _model(r.query, settings)) for r in routes]
    for m in mounted:
        app.router.add_route(m.route.method, _router_path(m.route), _handler(m, authenticate, max_body_bytes))
    document = build_document(mounted, title, description)
    body = orjson.dumps(document)

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app.router.add_get(spec_path, openapi)
    return document


# --- the document -------------------------------------------------------------------------------

def _parameters(model: type[BaseModel], where: str, defs: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=_REF, mode="validation")
    defs.update(schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema.get("properties", {}).items():
        prop = _absent_not_null(dict(prop))
        description = prop.pop("description", None)
        prop.pop("title", None)
        param: dict[str, Any] = {"name": name, "in": where, "required": where == "path" or name in required,
                                 "schema": prop}
        if description:
            param["description"] = description
        out.append(param)
    return out


def _absent_not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A parameter is absent, never null: ``X | None = None`` documents as ``X``, not required."""
    options = prop.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        prop.pop("anyOf")
        if len(rest) == 1:
            prop.update(rest[0])
        else:
            prop["anyOf"] = rest
    if prop.get("default", 0) is None:
        prop.pop("default")
    return prop


def build_document(mounted: list[Mounted], title: str, description: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``mounted``: every request and response model in
    ``components/schemas``, referenced by ``$ref``."""
    bodies = {m.body for m in mounted if m.body is not None}
    outputs = {model for m in mounted for model in m.route.responses.values() if isinstance(model, type)}
    outputs.add(ErrorBody)
    pairs: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = (
        [(b, "validation") for b in sorted(bodies, key=lambda t: t.__name__)]
        + [(o, "serialization") for o in sorted(outputs, key=lambda t: t.__name__)])
    refs, top = models_json_schema(pairs, ref_template=_REF)
    defs: dict[str, Any] = dict(top.get("$defs", {}))
    error_ref = refs[(ErrorBody, "serialization")]
    paths: dict[str, Any] = {}
    for m in mounted:
        r = m.route
        op: dict[str, Any] = {"operationId": r.operation_id, "summary": r.summary}
        if r.description or r.auth in ("staff", "supervisor", "admin"):
            role = f"Requires role {r.auth} or higher." if r.auth in ("staff", "supervisor", "admin") else ""
            op["description"] = " ".join(x for x in (r.description, role) if x)
        if r.tags:
            op["tags"] = list(r.tags)
        params: list[dict[str, Any]] = []
        if r.path_params is not None:
            params += _parameters(r.path_params, "path", defs)
        if m.query is not None:
            params += _parameters(m.query, "query", defs)
        if params:
            op["parameters"] = params
        if m.body is not None:
            # a body whose fields are all optional may be left out (read as {})
            required = any(f.is_required() for f in m.body.model_fields.values())
            op["requestBody"] = {"required": required,
                                 "content": {"application/json": {"schema": refs[(m.body, "validation")]}}}
        elif r.raw_body is not None:
            op["requestBody"] = {"required": True, "content": {r.raw_body.media_type: {"schema": dict(r.raw_body.schema)}}}
        responses: dict[str, Any] = {}
        for status, model in sorted(r.responses.items()):
            resp: dict[str, Any] = {"description": _STATUS_TEXT.get(status, "success")}
            if isinstance(model, type):
                resp["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
            elif isinstance(model, str):
                resp["content"] = {model: {"schema": {"type": "string"}}}
            if status in r.links:
                resp["links"] = {name: _link(link) for name, link in r.links[status].items()}
            responses[str(status)] = resp
        responses["default"] = {"description": "an error", "content": {"application/json": {"schema": error_ref}}}
        op["responses"] = responses
        if r.auth is not None:
            op["security"] = [{"bearer": []}]
        paths.setdefault(r.path, {})[r.method.lower()] = op
    info: dict[str, Any] = {"title": title, "version": "1"}
    if description:
        info["description"] = description
    return {
        "openapi": "3.1.0",
        "info": info,
        "paths": paths,
        "components": {"schemas": defs,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


def _link(link: Link) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": link.operation_id}
    if link.parameters:
        out["parameters"] = dict(link.parameters)
    if link.request_body is not None:
        out["requestBody"] = link.request_body
    if link.description:
        out["description"] = link.description
    return out


_STATUS_TEXT = {200: "success", 201: "created", 202: "accepted", 204: "done, no content"}
