import type { FastifyReply, FastifyRequest } from "fastify";
import { BaseController } from "ioserver";
import type { MetricsManager } from "./MetricsManager.js";

/**
 * `GET /metrics`: Prometheus text, for a scraper. Public here, as scrape
 * endpoints usually are on a private network: its labels are error codes,
 * configured issuers and namespaces, never a user or a token.
 */
export class MetricsController extends BaseController {
  async prometheus(_request: FastifyRequest, reply: FastifyReply) {
    const { contentType, body } = await (this.appHandle.metrics as MetricsManager).prometheus();
    return reply.header("content-type", contentType).header("cache-control", "no-store").send(body);
  }
}
