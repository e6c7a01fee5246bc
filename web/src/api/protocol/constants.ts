// Generated from crates/protocol by ./scripts/gen-ts. Do not edit.

/** WebSocket close codes the server uses, so clients can decide whether to reconnect. */
export const CloseCode = {
  GOING_AWAY: 1001,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  TOO_BIG: 1009,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  UNAUTHORIZED: 4401,
  KEEPALIVE_TIMEOUT: 4408,
} as const;

/** The WebSocket subprotocol the server speaks. */
export const SUBPROTOCOL = 'socket-hub.v1';

/** Prefix of the subprotocol entry that carries an access token. */
export const BEARER_SUBPROTOCOL_PREFIX = 'bearer.';
