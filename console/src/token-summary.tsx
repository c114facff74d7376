/**
 * A job's tokens as this browser reads them (@revq/shared's reader, every CRC checked): their
 * shape, the first ids of the first record, and a download of the stream.
 */
import { type Job, readTokenStream } from "@revq/shared";
import { DownloadButton } from "./auth-image.tsx";
import { ErrorNote } from "./error-note.tsx";

const IDS_SHOWN = 24;

export function TokenSummary({ job, stream }: { job: Job; stream: Uint8Array }) {
  let read: ReturnType<typeof readTokenStream>;
  try {
    read = readTokenStream(stream);
  } catch (error) {
    return <ErrorNote error={error} />;
  }
  const { header, tokens } = read;
  const first = Array.from(tokens.subarray(0, Math.min(IDS_SHOWN, header.tokensPerRecord)));
  const source = job.kind === "encode" ? job.id : (job.inputs as { job: string }).job;
  return (
    <div class="tokens">
      <p>
        {header.recordCount} {header.recordCount === 1 ? "record" : "records"} of{" "}
        {header.tokensPerRecord} tokens, each one of {header.codesPerGroup} codes
        {header.groups > 1 && ` (${header.groups} groups)`}; {stream.length} bytes.{" "}
        <DownloadButton
          path={`/v1/jobs/${encodeURIComponent(source)}/tokens`}
          name={`${source}.rvqt`}
          label="Download the tokens"
        />
      </p>
      {header.recordCount > 0 && (
        <p>
          Record 0 begins <code class="token-ids">{first.join(" ")}</code>
          {header.tokensPerRecord > IDS_SHOWN && " …"}
        </p>
      )}
    </div>
  );
}
