/**
 * A bounded robustness run, offline and on loopback: every parser of untrusted bytes fed random
 * and mutated inputs (10^5 each by default), then mutated bodies sent to the HTTP routes of an
 * edge under `wrangler dev`. A parser may accept or refuse with FormatError (HttpProblem for the
 * edge's own); an HTTP answer may be anything but a 5xx. Figures go to bench/results/fuzz.json;
 * the exit status is 1 if any input broke either rule.
 *
 *   npm run fuzz [-- --inputs 100000 --requests 3000 --seed 1 --no-http]
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { fuzzParser, type ParserFigures } from "./lib/fuzz/harness.ts";
import { fuzzHttp, type RouteFigures } from "./lib/fuzz/http.ts";
import { PARSER_TARGETS } from "./lib/fuzz/parsers.ts";
import { images, tarArchives } from "./lib/fuzz/seeds.ts";
import { bugsIn, summary } from "./lib/fuzz/summary.ts";
import { writeResults } from "./lib/results.ts";
import { startEdge } from "./lib/wrangler-dev.ts";

const { values } = parseArgs({
  options: {
    inputs: { type: "string", default: "100000" },
    requests: { type: "string", default: "3000" },
    seed: { type: "string", default: "1" },
    "no-http": { type: "boolean", default: false },
  },
});
const inputs = Number(values.inputs);
const requests = Number(values.requests);
const seed = Number(values.seed);

const parsers: ParserFigures[] = [];
for (const target of PARSER_TARGETS) {
  const row = await fuzzParser(target, { inputs, seed });
  console.error(`${row.parser}: ${row.inputs} inputs, ${row.otherErrors} other errors`);
  parsers.push(row);
}

let http: RouteFigures[] = [];
if (!values["no-http"]) {
  // Configured as a deployment is: without WEBHOOK_KEYS a job with a webhook is a 503 by design.
  const edge = await startEdge({ WEBHOOK_KEYS: `fuzz:${randomBytes(32).toString("base64")}` });
  try {
    http = await fuzzHttp(
      edge,
      { images: await images(), tars: await tarArchives() },
      {
        requests,
        seed,
      },
    );
  } finally {
    edge.stop();
  }
}

const figures = { parsers, http };
const file = writeResults("fuzz", { inputsPerParser: inputs, requests, seed, ...figures });
console.log(summary(figures));
console.log(`\nfigures: ${file}`);
const bugs = bugsIn(figures);
if (bugs > 0) {
  console.error(`${bugs} inputs raised something other than a refusal or got a 5xx`);
  process.exit(1);
}
