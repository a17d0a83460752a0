"""Logging in from a browser: the API token kept in an HttpOnly cookie, so page scripts never hold it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials

from server.api.deps import COOKIE_NAME, DatabaseDep, SettingsDep, bearer_scheme
from server.schemas import Login, LoginOut, SessionOut
from server.store import tokens

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
    return LoginOut(token=token.name)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, summary="Forget the login cookie")
def logout(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=False)


@router.get("/session", summary="Whether this server needs a token, and which one this client presents")
def current_session(
    request: Request, database: DatabaseDep, settings: SettingsDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> SessionOut:
    secret = bearer.credentials if bearer else request.cookies.get(COOKIE_NAME)
    name = None
    if secret:
        with database.transaction(write=False) as session:
            try:
                name = tokens.identify(session=session, secret=secret).name
            except tokens.TokenRejected:
                name = None
    return SessionOut(auth=settings.auth_enabled, public_reads=settings.public_reads, token=name)
