// Benchmark harness (not part of the package): Stan's multi-chain NUTS service, all chains in one
// process on TBB threads with the data read once, for a model library built by lmmformula's
// embedded engine (model.so exports new_model). Prints one JSON line: seconds to read the data
// and build the model, seconds of sampling, and each chain's first and last lp__ (to compare with
// one worker process per chain under the same seed).
//
//   multi_chain DATA.json CHAINS SEED THREADS WARMUP SAMPLES

#include <stan/callbacks/interrupt.hpp>
#include <stan/callbacks/logger.hpp>
#include <stan/callbacks/writer.hpp>
#include <stan/io/empty_var_context.hpp>
#include <stan/io/json/json_data.hpp>
#include <stan/model/model_base.hpp>
#include <stan/services/sample/hmc_nuts_diag_e_adapt.hpp>
#include <tbb/task_arena.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

stan::model::model_base& new_model(stan::io::var_context& data_context, unsigned int seed,
                                   std::ostream* msg_stream);

namespace {

// Keeps only the first and last lp__ of the draws it is given.
class LpWriter : public stan::callbacks::writer {
 public:
  void operator()(const std::vector<double>& state) override {
    if (rows == 0) first = state[0];
    last = state[0];
    ++rows;
  }
  long rows = 0;
  double first = NAN;
  double last = NAN;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: multi_chain DATA CHAINS SEED THREADS WARMUP SAMPLES\n");
    return 2;
  }
  const int chains = std::atoi(argv[2]);
  const unsigned int seed = std::atoi(argv[3]);
  const int threads = std::atoi(argv[4]);
  const int warmup = std::atoi(argv[5]);
  const int samples = std::atoi(argv[6]);
  auto started = std::chrono::steady_clock::now();
  std::ifstream stream(argv[1]);
  stan::json::json_data data(stream);
  std::ostringstream messages;
  std::unique_ptr<stan::model::model_base> model(&new_model(data, seed, &messages));
  const double loading = seconds_since(started);

  std::vector<std::unique_ptr<stan::io::empty_var_context>> inits;
  for (int i = 0; i < chains; ++i) inits.push_back(std::make_unique<stan::io::empty_var_context>());
  std::vector<stan::callbacks::writer> init_writers(chains), diagnostic_writers(chains);
  std::vector<LpWriter> sample_writers(chains);
  stan::callbacks::interrupt interrupt;
  stan::callbacks::logger logger;  // silent
  tbb::task_arena arena(threads);
  int code = 0;
  started = std::chrono::steady_clock::now();
  arena.execute([&] {
    code = stan::services::sample::hmc_nuts_diag_e_adapt(
        *model, chains, inits, seed, 1, 2.0, warmup, samples, 1, false, 100, 1.0, 0.0, 10, 0.8, 0.05, 0.75,
        10.0, 75, 50, 25, interrupt, logger, init_writers, sample_writers, diagnostic_writers);
  });
  const double sampling = seconds_since(started);
  std::printf("{\"code\": %d, \"loading\": %.4f, \"sampling\": %.4f, \"first_lp\": [", code, loading, sampling);
  for (int i = 0; i < chains; ++i) std::printf("%s%.17g", i ? ", " : "", sample_writers[i].first);
  std::printf("], \"last_lp\": [");
  for (int i = 0; i < chains; ++i) std::printf("%s%.17g", i ? ", " : "", sample_writers[i].last);
  std::printf("]}\n");
  return code;
}
