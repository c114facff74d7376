/**
 * A real HTTP server on loopback for webhook tests (vitest globalSetup, in Node): the edge under
 * test sends its deliveries here over real HTTP. POST /ok/<box> answers 204, POST /fail/<box>
 * answers 500; every request is kept, and GET /received/<box> returns those of one box.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import type { TestProject } from "vitest/node";

type Received = { path: string; headers: Record<string, string>; body: string };

declare module "vitest" {
  export interface ProvidedContext {
    webhookReceiver: string;
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

export default async function setup(project: TestProject) {
  const boxes = new Map<string, Received[]>();
  const server = createServer(async (req, res) => {
    const [, action, box] = (req.url ?? "").split("/");
    if (req.method === "GET" && action === "received") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(boxes.get(box) ?? []));
      return;
    }
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
    const list = boxes.get(box) ?? [];
    list.push({ path: req.url ?? "", headers, body: await readBody(req) });
    boxes.set(box, list);
    res.writeHead(action === "ok" ? 204 : 500);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  project.provide("webhookReceiver", `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}
