import * as http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A stand-in model for the demo (no cloud account needed): an OpenAI-compatible chat completions
 * endpoint on 127.0.0.1 that answers with a fixed sentence naming the last user message, with
 * Azure-shaped filter results and real-looking usage (prompt = words × 2, completion = words of answer).
 */
export async function startEchoModel(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", c => chunks.push(c));
    req.on("end", () => {
      let body: { messages?: { role?: string; content?: unknown }[] } = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        // answered as an empty question
      }
      const last = [...(body.messages ?? [])].reverse().find(m => m.role === "user");
      const question = typeof last?.content === "string" ? last.content : "";
      const answer = `Hello from the kars demo model. You asked: "${question.slice(0, 200)}"`;
      const prompt = Math.max(1, question.split(/\s+/).filter(Boolean).length * 2);
      const completion = answer.split(/\s+/).length;
      const safe = { filtered: false, severity: "safe" };
      const text = JSON.stringify({
        id: "chatcmpl-demo",
        object: "chat.completion",
        created: Math.floor(Date.now() / 1000),
        model: "kars-demo-model",
        prompt_filter_results: [{ prompt_index: 0, content_filter_results: { hate: safe, self_harm: safe, sexual: safe, violence: safe } }],
        choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: answer }, content_filter_results: { hate: safe, self_harm: safe, sexual: safe, violence: safe } }],
        usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
      });
      res.writeHead(req.url?.endsWith("/chat/completions") ? 200 : 404, { "content-type": "application/json" }).end(text);
    });
  });
  await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    close: () => new Promise(r => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
