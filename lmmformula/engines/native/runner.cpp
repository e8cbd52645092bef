// lmmformula's runner: a small C interface over Stan's services (NUTS, L-BFGS optimization,
// Laplace sampling, Pathfinder, ADVI).
//
// Compiled once per toolchain; linked with each model's own translation unit (which
// defines new_model) into a shared library that Python loads with ctypes. Draws go
// straight into a caller-owned buffer of doubles (one row per draw, the columns that
// lmf_columns names for the method); progress and messages go to a callback; a flag the
// caller sets stops the algorithms that check for interrupts.

#include <stan/callbacks/interrupt.hpp>
#include <stan/callbacks/logger.hpp>
#include <stan/callbacks/writer.hpp>
#include <stan/io/empty_var_context.hpp>
#include <stan/io/json/json_data.hpp>
#include <stan/model/model_base.hpp>
#include <stan/services/sample/hmc_nuts_dense_e.hpp>
#include <stan/services/sample/hmc_nuts_dense_e_adapt.hpp>
#include <stan/services/sample/hmc_nuts_diag_e.hpp>
#include <stan/services/sample/hmc_nuts_diag_e_adapt.hpp>
#include <stan/services/optimize/laplace_sample.hpp>
#include <stan/services/optimize/lbfgs.hpp>
#include <stan/services/pathfinder/multi.hpp>
#include <stan/services/experimental/advi/fullrank.hpp>
#include <stan/services/experimental/advi/meanfield.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

stan::model::model_base& new_model(stan::io::var_context& data_context, unsigned int seed,
                                   std::ostream* msg_stream);

extern "C" {
typedef void (*lmf_message)(int level, const char* text);
}

namespace {

// Keeps the draws, one row of doubles each, in the caller's buffer (rows beyond its capacity
// are counted, not kept). Rows of another width than the buffer's are counted as misfits.
class BufferWriter : public stan::callbacks::writer {
 public:
  BufferWriter(double* buffer, long rows, long columns)
      : buffer_(buffer), rows_(rows), columns_(columns) {}
  void operator()(const std::vector<std::string>& names) override {
    if (static_cast<long>(names.size()) != columns_) ++misfits_;
  }
  void operator()(const std::vector<double>& state) override { keep(state.data(), state.size()); }
  // Pathfinder hands over a whole matrix: parameters in rows, draws in columns.
  void operator()(const Eigen::Ref<Eigen::Matrix<double, -1, -1>>& values) override {
    Eigen::VectorXd column;
    for (Eigen::Index j = 0; j < values.cols(); ++j) {
      column = values.col(j);
      keep(column.data(), column.size());
    }
  }
  void operator()(const std::string& comment) override { comments_ << comment << '\n'; }
  void operator()() override {}
  long rows_written() const { return row_; }
  long misfits() const { return misfits_; }
  std::string comments() const { return comments_.str(); }

 private:
  void keep(const double* values, size_t size) {
    if (static_cast<long>(size) != columns_) {
      ++misfits_;
    } else if (row_ < rows_) {
      std::copy_n(values, size, buffer_ + row_ * columns_);
    }
    ++row_;
  }
  double* buffer_;
  long rows_;
  long columns_;
  long row_ = 0;
  long misfits_ = 0;
  std::ostringstream comments_;
};

// Drops everything (the per-iteration diagnostics Stan would otherwise compute and send).
class NullWriter : public stan::callbacks::writer {};

class CallbackLogger : public stan::callbacks::logger {
 public:
  explicit CallbackLogger(lmf_message message) : message_(message) {}
  void debug(const std::string& s) override { send(0, s); }
  void debug(const std::stringstream& s) override { send(0, s.str()); }
  void info(const std::string& s) override { send(1, s); }
  void info(const std::stringstream& s) override { send(1, s.str()); }
  void warn(const std::string& s) override { send(2, s); }
  void warn(const std::stringstream& s) override { send(2, s.str()); }
  void error(const std::string& s) override { send(3, s); }
  void error(const std::stringstream& s) override { send(3, s.str()); }
  void fatal(const std::string& s) override { send(4, s); }
  void fatal(const std::stringstream& s) override { send(4, s.str()); }

 private:
  void send(int level, const std::string& text) {
    if (message_ != nullptr && !text.empty()) message_(level, text.c_str());
  }
  lmf_message message_;
};

struct Stopped : std::runtime_error {
  Stopped() : std::runtime_error("stopped on request") {}
};

class FlagInterrupt : public stan::callbacks::interrupt {
 public:
  explicit FlagInterrupt(volatile int* flag) : flag_(flag) {}
  void operator()() override {
    if (flag_ != nullptr && *flag_ != 0) throw Stopped();
  }

 private:
  volatile int* flag_;
};

std::unique_ptr<stan::io::var_context> read_json(const char* path) {
  if (path == nullptr || path[0] == '\0') return std::make_unique<stan::io::empty_var_context>();
  std::ifstream stream(path);
  if (!stream) throw std::runtime_error(std::string("cannot read ") + path);
  return std::make_unique<stan::json::json_data>(stream);
}

void copy_text(const std::string& text, char* out, long capacity) {
  if (out == nullptr || capacity <= 0) return;
  long n = std::min<long>(capacity - 1, text.size());
  std::memcpy(out, text.data(), n);
  out[n] = '\0';
}

enum Method { NUTS = 0, OPTIMIZE = 1, LAPLACE = 2, PATHFINDER = 3, MEANFIELD = 4, FULLRANK = 5 };

// The columns each service writes: its own diagnostics, then every constrained value
// (parameters, transformed parameters, generated quantities).
void names_of(stan::model::model_base& model, int method, std::vector<std::string>& names) {
  switch (method) {
    case NUTS:
      names = {"lp__", "accept_stat__", "stepsize__", "treedepth__", "n_leapfrog__", "divergent__", "energy__"};
      break;
    case OPTIMIZE:
      names = {"lp__"};
      break;
    case LAPLACE:
      names = {"log_p__", "log_q__"};
      break;
    case PATHFINDER:
      names = {"lp_approx__", "lp__"};
      break;
    case MEANFIELD:
    case FULLRANK:
      names = {"lp__", "log_p__", "log_g__"};
      break;
    default:
      throw std::invalid_argument("unknown method " + std::to_string(method));
  }
  std::vector<std::string> constrained;
  model.constrained_param_names(constrained, true, true);
  names.insert(names.end(), constrained.begin(), constrained.end());
}

// What every service call shares: data and initial values read, the model built, the
// outcome mapped to a return code (0 done, 1 stopped, 2 failed with the reason in error).
template <typename Run>
int guarded(const char* data_path, const char* init_path, unsigned int seed, char* error, long error_capacity,
            Run&& run) {
  try {
    auto data = read_json(data_path);
    auto init = read_json(init_path);
    std::ostringstream messages;
    std::unique_ptr<stan::model::model_base> model(&new_model(*data, seed, &messages));
    int code = run(*model, *init);
    if (code != 0) {
      copy_text("Stan returned error code " + std::to_string(code) + " (see its messages)", error, error_capacity);
      return 2;
    }
    return 0;
  } catch (const Stopped&) {
    return 1;
  } catch (const std::exception& e) {
    copy_text(e.what(), error, error_capacity);
    return 2;
  }
}

// A writer's rows, checked: 0 with *rows set to how many were written, or 2 (the reason in error)
// when their width was not the buffer's.
int finish(const BufferWriter& writer, long* rows, char* error, long error_capacity) {
  if (writer.misfits() > 0) {
    copy_text("Stan wrote rows of another width than lmf_columns names", error, error_capacity);
    return 2;
  }
  *rows = writer.rows_written();
  return 0;
}

// L-BFGS with CmdStan's defaults; writes lp__ and the constrained values at the optimum. With
// jacobian, the mode of the density on the unconstrained scale.
int run_lbfgs(bool jacobian, stan::model::model_base& model, const stan::io::var_context& init, unsigned int seed,
              double init_radius, int iterations, int refresh, FlagInterrupt& interrupt,
              stan::callbacks::logger& logger, stan::callbacks::writer& writer) {
  NullWriter init_writer;
  auto lbfgs = jacobian ? stan::services::optimize::lbfgs<stan::model::model_base, true>
                        : stan::services::optimize::lbfgs<stan::model::model_base, false>;
  return lbfgs(model, init, seed, 1, init_radius, 5, 0.001, 1e-12, 1e4, 1e-8, 1e7, 1e-8, iterations, false, refresh,
               interrupt, logger, init_writer, writer);
}

}  // namespace

extern "C" {

// The column names of method's draws (see Method), tab-separated, for the data in data_path.
// Returns the number of columns, or -1 with the reason in error.
long lmf_columns(const char* data_path, int method, char* names, long names_capacity, char* error,
                 long error_capacity) {
  try {
    auto data = read_json(data_path);
    std::ostringstream messages;
    std::unique_ptr<stan::model::model_base> model(&new_model(*data, 0, &messages));
    std::vector<std::string> all;
    names_of(*model, method, all);
    std::string joined;
    for (size_t i = 0; i < all.size(); ++i) joined += (i ? "\t" : "") + all[i];
    if (static_cast<long>(joined.size()) >= names_capacity) {
      copy_text("names buffer too small: " + std::to_string(joined.size() + 1), error, error_capacity);
      return -1;
    }
    copy_text(joined, names, names_capacity);
    return static_cast<long>(all.size());
  } catch (const std::exception& e) {
    copy_text(e.what(), error, error_capacity);
    return -1;
  }
}

// Every function below returns 0 on success, 1 when stopped by the flag, 2 on an error (the
// reason in error). draws holds capacity rows of columns doubles (lmf_columns); *rows is set
// to the number of rows written.

// NUTS for one chain; rows: num_samples. With metric_path empty: adaptive, with Stan's defaults for
// the rest (as CmdStan): stepsize 1, no jitter, gamma 0.05, kappa 0.75, t0 10, windows 75 / 50 / 25;
// the adapted step size and inverse metric go to adaptation as Stan's comment lines. Otherwise no
// adaptation and no warm-up: the step size given and the inverse metric in metric_path (Stan JSON,
// "inv_metric"), as CmdStan's adapt engaged=0 with a metric file: a chain continued after its warm-up.
int lmf_nuts(const char* data_path, const char* init_path, int dense, unsigned int seed, unsigned int chain,
             double init_radius, int num_warmup, int num_samples, int refresh, int max_depth, double delta,
             double stepsize, const char* metric_path, double* draws, long columns, volatile int* stop,
             lmf_message message, char* adaptation, long adaptation_capacity, char* error, long error_capacity) {
  CallbackLogger logger(message);
  FlagInterrupt interrupt(stop);
  BufferWriter writer(draws, num_samples, columns);
  bool adapt = metric_path == nullptr || metric_path[0] == '\0';
  int code = guarded(data_path, init_path, seed, error, error_capacity, [&](auto& model, auto& init) {
    NullWriter init_writer, diagnostic_writer;
    if (!adapt) {
      auto metric = read_json(metric_path);
      if (dense) {
        return stan::services::sample::hmc_nuts_dense_e(
            model, init, *metric, seed, chain, init_radius, 0, num_samples, 1, false, refresh, stepsize, 0.0,
            max_depth, interrupt, logger, init_writer, writer, diagnostic_writer);
      }
      return stan::services::sample::hmc_nuts_diag_e(
          model, init, *metric, seed, chain, init_radius, 0, num_samples, 1, false, refresh, stepsize, 0.0,
          max_depth, interrupt, logger, init_writer, writer, diagnostic_writer);
    }
    if (dense) {
      return stan::services::sample::hmc_nuts_dense_e_adapt(
          model, init, seed, chain, init_radius, num_warmup, num_samples, 1, false, refresh, 1.0, 0.0, max_depth,
          delta, 0.05, 0.75, 10.0, 75, 50, 25, interrupt, logger, init_writer, writer, diagnostic_writer);
    }
    return stan::services::sample::hmc_nuts_diag_e_adapt(
        model, init, seed, chain, init_radius, num_warmup, num_samples, 1, false, refresh, 1.0, 0.0, max_depth,
        delta, 0.05, 0.75, 10.0, 75, 50, 25, interrupt, logger, init_writer, writer, diagnostic_writer);
  });
  copy_text(writer.comments(), adaptation, adaptation_capacity);
  long rows = 0;
  return code != 0 ? code : finish(writer, &rows, error, error_capacity);
}

// The posterior mode by L-BFGS (CmdStan's defaults); with jacobian, the mode of the density
// on the unconstrained scale (what Laplace sampling centres on). One row.
int lmf_optimize(const char* data_path, const char* init_path, unsigned int seed, double init_radius,
                 int jacobian, int iterations, int refresh, double* draws, long columns, long* rows,
                 volatile int* stop, lmf_message message, char* error, long error_capacity) {
  CallbackLogger logger(message);
  FlagInterrupt interrupt(stop);
  BufferWriter writer(draws, 1, columns);
  int code = guarded(data_path, init_path, seed, error, error_capacity, [&](auto& model, auto& init) {
    return run_lbfgs(jacobian, model, init, seed, init_radius, iterations, refresh, interrupt, logger, writer);
  });
  return code != 0 ? code : finish(writer, rows, error, error_capacity);
}

// Draws from the normal approximation at the mode (found first by L-BFGS with the same
// jacobian setting), as CmdStan's laplace method. num_draws rows.
int lmf_laplace(const char* data_path, const char* init_path, unsigned int seed, double init_radius,
                int jacobian, int iterations, int num_draws, int refresh, double* draws, long columns,
                long* rows, volatile int* stop, lmf_message message, char* error, long error_capacity) {
  CallbackLogger logger(message);
  FlagInterrupt interrupt(stop);
  BufferWriter writer(draws, num_draws, columns);
  int code = guarded(data_path, init_path, seed, error, error_capacity, [&](auto& model, auto& init) {
    std::vector<std::string> names;
    model.constrained_param_names(names, true, true);
    std::vector<std::string> parameters;
    model.constrained_param_names(parameters, false, false);
    std::vector<double> optimum(names.size() + 1);
    BufferWriter mode_writer(optimum.data(), 1, optimum.size());
    int found = run_lbfgs(jacobian, model, init, seed, init_radius, iterations, refresh, interrupt, logger,
                          mode_writer);
    if (found != 0) return found;
    if (mode_writer.rows_written() != 1 || mode_writer.misfits() > 0)
      throw std::runtime_error("the optimizer wrote no mode");
    // the mode's parameters (after lp__), back on the unconstrained scale
    Eigen::VectorXd constrained = Eigen::Map<Eigen::VectorXd>(optimum.data() + 1, parameters.size());
    Eigen::VectorXd mode;
    std::ostringstream messages;
    model.unconstrain_array(constrained, mode, &messages);
    return jacobian ? stan::services::laplace_sample<true>(model, mode, num_draws, seed, refresh, interrupt,
                                                           logger, writer)
                    : stan::services::laplace_sample<false>(model, mode, num_draws, seed, refresh, interrupt,
                                                            logger, writer);
  });
  return code != 0 ? code : finish(writer, rows, error, error_capacity);
}

// Multi-path Pathfinder (paths on TBB threads), CmdStan's defaults for L-BFGS and 25 ELBO
// draws; every path's num_draws draws with lp_approx__ and lp__, without resampling (the
// caller resamples by Pareto-smoothed importance weights). Up to num_paths * num_draws rows.
int lmf_pathfinder(const char* data_path, const char* init_path, unsigned int seed, double init_radius,
                   int num_paths, int num_draws, int iterations, int refresh, double* draws, long columns,
                   long* rows, volatile int* stop, lmf_message message, char* error, long error_capacity) {
  CallbackLogger logger(message);
  FlagInterrupt interrupt(stop);
  BufferWriter writer(draws, static_cast<long>(num_paths) * num_draws, columns);
  int code = guarded(data_path, init_path, seed, error, error_capacity, [&](auto& model, auto&) {
    std::vector<std::unique_ptr<stan::io::var_context>> inits;
    for (int i = 0; i < num_paths; ++i) inits.push_back(read_json(init_path));
    std::vector<stan::callbacks::writer> init_writers(num_paths), path_writers(num_paths);
    std::vector<stan::callbacks::structured_writer> path_diagnostics(num_paths);
    NullWriter diagnostic_writer;
    return stan::services::pathfinder::pathfinder_lbfgs_multi(
        model, inits, seed, 1, init_radius, 5, 0.001, 1e-12, 1e4, 1e-8, 1e7, 1e-8, iterations, 25, num_draws,
        num_draws, num_paths, false, refresh, interrupt, logger, init_writers, path_writers, path_diagnostics,
        writer, diagnostic_writer, true, false);
  });
  return code != 0 ? code : finish(writer, rows, error, error_capacity);
}

// ADVI, mean-field or full-rank, with CmdStan's defaults (1 gradient draw, 100 ELBO draws,
// eta adapted over 50 iterations, relative tolerance 0.01, ELBO every 100 iterations). The
// first row is the approximation's mean, then num_draws draws: num_draws + 1 rows.
int lmf_advi(const char* data_path, const char* init_path, int fullrank, unsigned int seed,
             double init_radius, int iterations, int num_draws, double* draws, long columns, long* rows,
             volatile int* stop, lmf_message message, char* error, long error_capacity) {
  CallbackLogger logger(message);
  FlagInterrupt interrupt(stop);
  BufferWriter writer(draws, num_draws + 1L, columns);
  int code = guarded(data_path, init_path, seed, error, error_capacity, [&](auto& model, auto& init) {
    NullWriter init_writer, diagnostic_writer;
    if (fullrank) {
      return stan::services::experimental::advi::fullrank(model, init, seed, 1, init_radius, 1, 100, iterations,
                                                          0.01, 1.0, true, 50, 100, num_draws, interrupt, logger,
                                                          init_writer, writer, diagnostic_writer);
    }
    return stan::services::experimental::advi::meanfield(model, init, seed, 1, init_radius, 1, 100, iterations,
                                                         0.01, 1.0, true, 50, 100, num_draws, interrupt, logger,
                                                         init_writer, writer, diagnostic_writer);
  });
  return code != 0 ? code : finish(writer, rows, error, error_capacity);
}

// The log density of the model for the data in data_path at the constrained parameter
// values in params_path (Stan JSON), with every constant and without the Jacobian of the
// constraining transforms: what the model block's statements add up to. Returns 0 and sets
// *value, or 2 with the reason in error.
int lmf_log_density(const char* data_path, const char* params_path, double* value, char* error,
                    long error_capacity) {
  return guarded(data_path, params_path, 0, error, error_capacity, [&](auto& model, auto& params) {
    std::ostringstream messages;
    Eigen::VectorXd unconstrained;
    model.transform_inits(params, unconstrained, &messages);
    *value = model.log_prob(unconstrained, &messages);
    return 0;
  });
}

}  // extern "C"
