"use client";

import { useEffect, useState } from "react";
import { Torchlight } from "torchlight";

export default function Chat() {
  const [status, setStatus] = useState("starting");
  const [answer, setAnswer] = useState("");

  useEffect(() => {
    let engine;
    let unmounted = false;
    (async () => {
      engine = await Torchlight.load("/models/SmolLM2-135M-Instruct.Q4_1.gguf", {
        onProgress: ({ phase, loadedBytes, totalBytes }) => setStatus(`${phase} ${Math.round((100 * loadedBytes) / totalBytes)}%`),
      });
      if (unmounted) return engine.unload();
      setStatus(`answering (${engine.backend})`);
      const stream = await engine.chat.completions.create({
        messages: [{ role: "user", content: "What is the capital of France?" }],
        max_tokens: 64,
        stream: true,
      });
      for await (const chunk of stream) setAnswer((text) => text + (chunk.choices[0].delta.content ?? ""));
      setStatus("done");
    })().catch((error) => unmounted || setStatus(`failed: ${error.message}`));
    return () => {
      unmounted = true;
      engine?.unload();
    };
  }, []);

  return (
    <main>
      <p id="status">{status}</p>
      <p id="answer">{answer}</p>
    </main>
  );
}
