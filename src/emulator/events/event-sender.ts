import http from 'node:http';
import https from 'node:https';

export interface DeliveryOutcome {
  /** null when no HTTP answer came. */
  readonly status: number | null;
  readonly body: string;
  readonly error?: string;
}

export const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded';

/** Keeps a chatty handler's answer from filling the sent log. */
const MAX_RECORDED_ANSWER = 4096;

/**
 * The HTTP side of Bitrix's event queue server: one POST per event, no retries, a bounded wait for
 * the answer. A fresh connection per POST, so a handler closing an idle keep-alive socket can never
 * cost an event; at most 64 POSTs in flight per handler host.
 */
export class EventSender {
  private readonly agents = {
    http: new http.Agent({ keepAlive: false, maxSockets: 64 }),
    https: new https.Agent({ keepAlive: false, maxSockets: 64 }),
  };
  private readonly inFlight = new Set<http.ClientRequest>();
  private closed = false;

  constructor(private readonly timeoutMs: number) {}

  post(url: string, form: string): Promise<DeliveryOutcome> {
    return new Promise((resolve) => {
      if (this.closed) {
        resolve({ status: null, body: '', error: 'The emulator is shutting down' });
        return;
      }
      const target = new URL(url);
      const secure = target.protocol === 'https:';
      const request = (secure ? https : http).request(target, {
        method: 'POST',
        agent: secure ? this.agents.https : this.agents.http,
        headers: { 'content-type': FORM_CONTENT_TYPE, 'content-length': Buffer.byteLength(form) },
      });
      this.inFlight.add(request);
      request.setTimeout(this.timeoutMs, () => {
        request.destroy(new Error(`No answer within ${this.timeoutMs} ms`));
      });
      request.on('response', (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          if (body.length < MAX_RECORDED_ANSWER) body += chunk;
        });
        response.on('end', () => {
          resolve({
            status: response.statusCode ?? null,
            body: body.slice(0, MAX_RECORDED_ANSWER),
          });
        });
        response.on('error', (error) => {
          resolve({ status: response.statusCode ?? null, body, error: error.message });
        });
      });
      request.on('error', (error) => resolve({ status: null, body: '', error: error.message }));
      request.on('close', () => this.inFlight.delete(request));
      request.end(form);
    });
  }

  /** Abandons deliveries in flight and queued, as a stopped queue server would. */
  close(): void {
    this.closed = true;
    for (const request of this.inFlight)
      request.destroy(new Error('The emulator is shutting down'));
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}
