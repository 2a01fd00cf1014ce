"use client";
// The browser's side: the same page (from the server's answer, not fetched again), a consent
// banner, and impressions and clicks of the decided blocks, batched by @tailored/client.
import { useEffect, useMemo, useState, type ReactNode } from "react";
import { createClient, localStorageQueue, type Block, type PersonalizedPage } from "@tailored/client";
import { TailoredBlock, TailoredProvider, usePersonalizedPage } from "@tailored/react";

export function Homepage({ initial }: { initial: PersonalizedPage }) {
  const client = useMemo(
    () => (typeof window === "undefined" ? null : createClient({ endpoint: "/graphql", request: { headers: { cookie: document.cookie } }, storage: localStorageQueue() })),
    [],
  );
  return (
    <TailoredProvider client={client} pages={{ "/": initial }}>
      <ConsentBanner client={client} />
      <Body />
    </TailoredProvider>
  );
}

function ConsentBanner({ client }: { client: ReturnType<typeof createClient> | null }) {
  const [answered, setAnswered] = useState<boolean | null>(null);
  const [mounted, setMounted] = useState(false);
  useEffect(() => setMounted(true), []); // the banner depends on the browser's cookie: after hydration
  if (!mounted || !client || answered || client.consent().decided) return null;
  const answer = async (granted: boolean) => {
    await client.setConsent({ analytics: granted, personalization: granted });
    setAnswered(true);
    if (granted) window.location.reload(); // the next render is personalized for the new visitor id
  };
  return (
    <aside data-testid="consent-banner">
      <p>May we remember what you look at to personalize this shop?</p>
      <button onClick={() => answer(true)}>Accept all</button>
      <button onClick={() => answer(false)}>Decline all</button>
    </aside>
  );
}

function Body() {
  const { page, decisions } = usePersonalizedPage("/");
  if (!page) return null;
  return (
    <main>
      <h1>{page.title}</h1>
      {(page.body ?? []).map((block, i) => {
        const decision = decisions.find((d) => d.block === block.id);
        return block.blockType === "PersonalizedBlock" || decision ? (
          <TailoredBlock key={block.id ?? i} as="section" decision={decision}>
            {(block.blocks ?? [block]).map((child, j) => <Content key={child.id ?? j} block={child} />)}
          </TailoredBlock>
        ) : (
          <Content key={block.id ?? i} block={block} />
        );
      })}
    </main>
  );
}

type Product = { id: string; title: string; url: string; price?: string };

function Content({ block }: { block: Block }): ReactNode {
  const text = (name: string) => (typeof block[name] === "string" ? (block[name] as string) : "");
  switch (block.blockType) {
    case "HeroBlock":
      return (
        <header data-block="hero">
          <h2>{text("heading")}</h2>
          <p>{text("subheading")}</p>
          {text("ctaUrl") && <a href={text("ctaUrl")} data-track="hero-cta">{text("ctaLabel")}</a>}
        </header>
      );
    case "RichTextBlock":
      return <div dangerouslySetInnerHTML={{ __html: text("value") }} />;
    case "CTABlock":
      return <p><a href={text("url")} data-track="cta">{text("buttonLabel") || text("text")}</a></p>;
    case "ProductCarouselBlock":
    case "RecommendationBlock":
      return (
        <section data-block="products">
          <h3>{text("heading")}</h3>
          <ul>
            {((block.products as Product[] | undefined) ?? []).map((product) => (
              <li key={product.id} data-product={product.id}><a href={product.url}>{product.title}</a> {product.price}</li>
            ))}
          </ul>
        </section>
      );
    default:
      return text("heading") || text("message") || text("text") ? <p data-block={block.blockType}>{text("heading") || text("message") || text("text")}</p> : null;
  }
}
