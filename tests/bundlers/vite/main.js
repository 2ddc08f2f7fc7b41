import { Torchlight } from "torchlight";

const status = document.querySelector("#status");
const answer = document.querySelector("#answer");

async function main() {
  const engine = await Torchlight.load("/models/SmolLM2-135M-Instruct.Q4_1.gguf", {
    onProgress: ({ phase, loadedBytes, totalBytes }) => {
      status.textContent = `${phase} ${Math.round((100 * loadedBytes) / totalBytes)}%`;
    },
  });
  status.textContent = `answering (${engine.backend})`;
  const stream = await engine.chat.completions.create({
    messages: [{ role: "user", content: "What is the capital of France?" }],
    max_tokens: 64,
    stream: true,
  });
  for await (const chunk of stream) answer.textContent += chunk.choices[0].delta.content ?? "";
  status.textContent = "done";
}

main().catch((error) => {
  status.textContent = `failed: ${error.message}`;
});
