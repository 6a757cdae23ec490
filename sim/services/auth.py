"""Auth service (user/password or token -> user token) and the token store every service checks.

Tokens are JWTs like a real robot's (signed with a per-run secret) and are only valid on the sim
that issued them. `TokenStore.is_valid` is what the server's auth interceptor calls per RPC.
"""

from __future__ import annotations

import secrets
import threading
import time

import grpc
import jwt
from bosdyn.api import auth_pb2, auth_service_pb2_grpc
from bosdyn.client.auth import AuthClient

from sim.robot_clock import RobotClock
from sim.services.common import AUTH_AUTHORITY, Reply, ServiceSpec

TOKEN_LIFETIME_S = 12 * 3600.0


class TokenStore:
    """Issues and validates user tokens (thread-safe; validation is a dict lookup)."""

    def __init__(self, issuer: str, lifetime_s: float = TOKEN_LIFETIME_S) -> None:
        self._issuer = issuer
        self._lifetime_s = lifetime_s
        self._secret = secrets.token_bytes(32)
        self._expiry_by_token: dict[str, float] = {}
        self._subject_by_token: dict[str, str] = {}
        self._lock = threading.Lock()

    def issue(self, subject: str) -> str:
        now = time.time()
        claims = {
            "iss": self._issuer,
            "sub": subject,
            "iat": int(now),
            "exp": int(now + self._lifetime_s),
            "jti": secrets.token_hex(8),
        }
        token = jwt.encode(claims, self._secret, algorithm="HS256")
        with self._lock:
            self._expiry_by_token[token] = now + self._lifetime_s
            self._subject_by_token[token] = subject
        return token

    def is_valid(self, token: str) -> bool:
        expiry = self._expiry_by_token.get(token)
        return expiry is not None and expiry > time.time()

    def subject(self, token: str) -> str | None:
        return self._subject_by_token.get(token) if self.is_valid(token) else None


class AuthServicer(auth_service_pb2_grpc.AuthServiceServicer):
    spec = ServiceSpec(AuthClient.default_service_name, AuthClient.service_type, AUTH_AUTHORITY, False)

    def __init__(self, clock: RobotClock, tokens: TokenStore, user: str, password: str) -> None:
        self._clock = clock
        self._tokens = tokens
        self._user = user
        self._password = password

    def add_to_server(self, server: grpc.Server) -> None:
        auth_service_pb2_grpc.add_AuthServiceServicer_to_server(self, server)

    def GetAuthToken(self, request: auth_pb2.GetAuthTokenRequest, context: grpc.ServicerContext) -> auth_pb2.GetAuthTokenResponse:
        response = auth_pb2.GetAuthTokenResponse()
        with Reply(response, request, self._clock):
            if request.token:
                subject = self._tokens.subject(request.token)
                if subject is None:
                    response.status = auth_pb2.GetAuthTokenResponse.STATUS_INVALID_TOKEN
                else:
                    response.token = self._tokens.issue(subject)
                    response.status = auth_pb2.GetAuthTokenResponse.STATUS_OK
            elif secrets.compare_digest(request.username, self._user) and secrets.compare_digest(
                request.password, self._password
            ):
                response.token = self._tokens.issue(request.username)
                response.status = auth_pb2.GetAuthTokenResponse.STATUS_OK
            else:
                response.status = auth_pb2.GetAuthTokenResponse.STATUS_INVALID_LOGIN
        return response
