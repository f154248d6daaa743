-- Catalog schema, version 8: claims that read only what they hand out.
--
-- A claim takes the highest-priority runnable jobs of its analyzers. With `jobs_ready` it
-- sorted every queued job of the queue at each claim, so draining a queue of N jobs cost N²
-- (a claim of 8,000 queued jobs took as long as running several of them). This index gives
-- each analyzer's queued jobs in claim order, so a claim reads about as many rows as it takes.
CREATE INDEX jobs_claim ON jobs (state, analyzer, priority DESC, id);
