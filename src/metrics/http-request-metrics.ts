import { Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Counter, Histogram } from 'prom-client';
import { MetricsRegistry } from './metrics.registry';

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** Requests that matched no route share one label, so scanners cannot mint new series. */
const UNMATCHED_ROUTE = 'unmatched';

type HttpLabel = 'method' | 'route' | 'status_class';

/**
 * Counts and times every HTTP response of the service. Labels are the route pattern
 * (`/admin/portals/:memberId`, never the raw URL) and the status class, so series stay few
 * however many portals and ids pass through.
 */
@Injectable()
export class HttpRequestMetrics implements OnModuleInit {
  private readonly requests: Counter<HttpLabel>;
  private readonly duration: Histogram<HttpLabel>;

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    metrics: MetricsRegistry,
  ) {
    this.requests = metrics.counter('http_requests_total', 'HTTP responses sent', [
      'method',
      'route',
      'status_class',
    ]);
    this.duration = metrics.histogram(
      'http_request_duration_seconds',
      'Time from request received to response sent',
      ['method', 'route', 'status_class'],
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    );
  }

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    fastify.addHook('onResponse', (request, reply, done) => {
      this.record(request, reply);
      done();
    });
  }

  private record(request: FastifyRequest, reply: FastifyReply): void {
    const labels = {
      method: KNOWN_METHODS.has(request.method) ? request.method : 'OTHER',
      route: request.routeOptions.url ?? UNMATCHED_ROUTE,
      status_class: `${Math.floor(reply.statusCode / 100)}xx`,
    };
    this.requests.inc(labels);
    this.duration.observe(labels, reply.elapsedTime / 1000);
  }
}
