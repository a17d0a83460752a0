"""Logging in from a browser: the API token kept in an HttpOnly cookie, so page scripts never hold it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials

from server.api.deps import COOKIE_NAME, CallerDep, DatabaseDep, SettingsDep, bearer_scheme
from server.schemas import Login, LoginOut, SessionOut
from server.store import tokens
from server.store.errors import Conflict

router = APIRouter(tags=["auth"])
COOKIE_MAX_AGE = 30 * 24 * 3600


@router.post("/login", summary="Check a token and keep it in an HttpOnly cookie")
def login(body: Login, database: DatabaseDep, settings: SettingsDep, response: Response) -> LoginOut:
    with database.transaction(write=False) as session:
        try:
            token = tokens.identify(session=session, secret=body.token)
        except tokens.TokenRejected as error:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(error), headers={"WWW-Authenticate": "Bearer"}) from None
    response.set_cookie(
        COOKIE_NAME, body.token, max_age=COOKIE_MAX_AGE, httponly=True, samesite="strict",
        secure=settings.cookie_secure, path="/",
    )
    return LoginOut(token=token.name, role=token.role)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="Forget the login cookie")
def logout(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=False)


@router.post(
    "/session/revoke", status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke the token this client presents (the page's 'Sign out and revoke'), and forget the cookie",
)
def revoke_own_token(caller: CallerDep, database: DatabaseDep, response: Response) -> None:
    """As ``miles token revoke`` does for the token sent (header or cookie): every role may revoke its own.
    Requests with it get 401 from now on, and its open live streams end within seconds."""
    if caller.token_id is None:
        raise Conflict("this server runs without API tokens (auth is off): there is no token to revoke")
    with database.transaction() as session:
        tokens.revoke_id(session=session, token_id=caller.token_id)
    logout(response)


@router.get("/session", summary="Whether this server needs a token, and which one this client presents")
def current_session(
    request: Request, database: DatabaseDep, settings: SettingsDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> SessionOut:
    secret = bearer.credentials if bearer else request.cookies.get(COOKIE_NAME)
    name = role = None
    if secret:
        with database.transaction(write=False) as session:
            try:
                token = tokens.identify(session=session, secret=secret)
                name, role = token.name, token.role
            except tokens.TokenRejected:
                pass
    return SessionOut(auth=settings.auth_enabled, public_reads=settings.public_reads, token=name, role=role)
