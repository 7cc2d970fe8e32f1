// Package server is Infergo's HTTP API on fasthttp. It speaks three dialects over one model:
//
//   - the api-inference-community (aic) container contract: GET/HEAD any path → {"ok":"ok"},
//     POST any other path → the configured task, byte-compatible with the Python images
//     (error texts, Python float repr, compact unescaped JSON, gzip from 1000 bytes);
//   - text-embeddings-inference (TEI): POST /embed, /embed_all, /similarity, /predict,
//     /tokenize, /decode; GET /health, /info, /metrics;
//   - OpenAI embeddings: POST /v1/embeddings and /embeddings.
//
// # Wiring
//
//	reg := prometheus.NewRegistry()
//	obs, _ := server.NewSchedObserver(reg)          // pass as sched.Config.Observer
//	srv, _ := server.New(server.Config{Task: os.Getenv("TASK"), Registry: reg,
//		Load: func(ctx context.Context) (*pipelines.Model, error) { … }})
//	go srv.Serve(ln)                                 // answers at once; Load runs in background
//	srv.SetModel(newModel)                          // hot swap (e.g. webhook reload)
//	srv.Shutdown(ctx)                               // drain, then close the model
//
// # Statuses
//
// One table (errors.go kindTable) maps failures to statuses; aic routes and TEI/OpenAI
// routes read different columns:
//
//	failure                                   aic   TEI/OpenAI (error_type)
//	bad input (ValidationError, bad fields)    400   422 Validation
//	empty input (ErrEmpty)                     400   400 Empty
//	body not JSON (TEI only)                   -     400 Validation
//	body over MaxBodyBytes                     413   413 Validation
//	sched.ErrOverloaded (Retry-After: 1)       429   429 Overloaded
//	loading past RequestTimeout, ErrClosed,
//	  shutting down (Retry-After: 1)           503   503 Unhealthy
//	Config.Load failed (error text shown)      500   500 Unhealthy
//	model lacks the route's interface          500   424 Backend
//	RequestTimeout elapsed                     504   504 Backend
//	client disconnected (log only)             499   499 Backend
//	anything else (detail logged only)         500   424 Backend
//	method other than GET/HEAD/POST            405   405
//
// # Choices where the references leave room
//
//   - sentence-similarity with sentences [] is 400 "`inputs.sentences` cannot be empty"
//     (TEI's answer), on both dialects.
//   - aic parameters: feature-extraction takes normalize, truncate, truncation_direction and
//     dimensions, sentence-similarity truncate and truncation_direction; any other key is
//     upstream's TypeError "__call__() got an unexpected keyword argument 'k'" (400). The same
//     knobs at the top level (where huggingface_hub sends them) count when well-typed and are
//     ignored otherwise, as the containers ignore top-level keys.
//   - MaxClientBatchSize also bounds aic lists (400 "batch size N > maximum allowed batch
//     size M"); upstream has no limit.
//   - TEI messages for pipeline validation errors get TEI's "Input validation error: " prefix;
//     error_type is PascalCase, as TEI serialises it.
//   - Floats: aic bodies print float32 widened to float64 in Python's repr (identical bytes
//     to numpy .tolist() + json.dumps); TEI/OpenAI bodies print the shortest float32 digits.
//   - 405 answers JSON {"error":"Method Not Allowed"} with Allow: GET, HEAD, POST (Starlette
//     sends plain text).
//   - Gzip honours q-values (Starlette only looks for the substring "gzip").
//   - Inputs as token ids and prompt_name are refused (422): the pipelines contract has
//     neither.
//   - token-classification (aicclassify.go): aggregation_strategy defaults to "simple" (the
//     hosted API's recommendation) and gives the containers' {entity_group, score, word,
//     start, end}; "none" gives transformers' per-token {entity, score, index, word, start,
//     end}. Texts over the model's length run as overlapping windows (parameter stride,
//     default a quarter of the window) merged as transformers merges them; nothing is
//     truncated. Parameters are checked (400 with a message) where transformers would fail
//     later or with a KeyError (a 500 in the containers).
//   - text-classification answers [[{label, score}…]] with every label unless top_k is given;
//     function_to_apply and truncation (default true, as TEI) are accepted too. TEI /predict
//     scores as TEI does (softmax over several labels, sigmoid over one, raw_scores: logits)
//     and refuses models without a text classifier with 424.
package server
