// Checking a chat webhook's signature in Node.js (18 or later), on the raw body as received.
import { createHmac, timingSafeEqual } from 'node:crypto';

const TOLERANCE_S = 300; // older requests are replays

export function verified(secret, headers, rawBody) {
  const timestamp = headers['x-chat-timestamp'] ?? '';
  if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_S) return false;
  const expected = 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.`).update(rawBody).digest('hex');
  const given = String(headers['x-chat-signature'] ?? '');
  return given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}
