// lmmformula's runner: a small C interface over Stan's sampling services.
//
// Compiled once per toolchain; linked with each model's own translation unit (which
// defines new_model) into a shared library that Python loads with ctypes. Draws go
// straight into a caller-owned buffer of doubles; progress and messages go to a
// callback; a flag the caller sets stops the sampler.

#include <stan/callbacks/interrupt.hpp>
#include <stan/callbacks/logger.hpp>
#include <stan/callbacks/writer.hpp>
#include <stan/io/empty_var_context.hpp>
#include <stan/io/json/json_data.hpp>
#include <stan/model/model_base.hpp>
#include <stan/services/sample/hmc_nuts_dense_e_adapt.hpp>
#include <stan/services/sample/hmc_nuts_diag_e_adapt.hpp>

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

// Keeps the sampling draws, one row of doubles each, in the caller's buffer.
class BufferWriter : public stan::callbacks::writer {
 public:
  BufferWriter(double* buffer, long rows, long columns)
      : buffer_(buffer), rows_(rows), columns_(columns) {}
  void operator()(const std::vector<std::string>&) override {}
  void operator()(const std::vector<double>& state) override {
    if (row_ < rows_) {
      std::copy_n(state.begin(), std::min<long>(columns_, state.size()), buffer_ + row_ * columns_);
    }
    ++row_;
  }
  void operator()(const std::string& comment) override { comments_ << comment << '\n'; }
  void operator()() override {}
  long rows_written() const { return row_; }
  std::string comments() const { return comments_.str(); }

 private:
  double* buffer_;
  long rows_;
  long columns_;
  long row_ = 0;
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

void names_of(stan::model::model_base& model, std::vector<std::string>& names) {
  names = {"lp__", "accept_stat__", "stepsize__", "treedepth__", "n_leapfrog__", "divergent__", "energy__"};
  std::vector<std::string> constrained;
  model.constrained_param_names(constrained, true, true);
  names.insert(names.end(), constrained.begin(), constrained.end());
}

}  // namespace

extern "C" {

// The column names of the draws, tab-separated, for the data in data_path. Returns the
// number of columns, or -1 with the reason in error.
long lmf_columns(const char* data_path, char* names, long names_capacity, char* error, long error_capacity) {
  try {
    auto data = read_json(data_path);
    std::ostringstream messages;
    stan::model::model_base& model = new_model(*data, 0, &messages);
    std::vector<std::string> all;
    names_of(model, all);
    std::string joined;
    for (size_t i = 0; i < all.size(); ++i) joined += (i ? "\t" : "") + all[i];
    delete &model;
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

// Adaptive NUTS for one chain. draws: num_samples x columns doubles (see lmf_columns).
// Returns 0 on success, 1 when stopped by the flag, 2 on an error (reason in error).
int lmf_nuts(const char* data_path, const char* init_path, int dense, unsigned int seed, unsigned int chain,
             double init_radius, int num_warmup, int num_samples, int refresh, int max_depth, double delta,
             double* draws, long columns, volatile int* stop, lmf_message message, char* adaptation,
             long adaptation_capacity, char* error, long error_capacity) {
  CallbackLogger logger(message);
  try {
    auto data = read_json(data_path);
    auto init = read_json(init_path);
    std::ostringstream messages;
    std::unique_ptr<stan::model::model_base> model(&new_model(*data, seed, &messages));
    FlagInterrupt interrupt(stop);
    NullWriter init_writer, diagnostic_writer;
    BufferWriter sample_writer(draws, num_samples, columns);
    int code;
    // Stan's defaults for the rest (as CmdStan): stepsize 1, no jitter, gamma 0.05, kappa 0.75, t0 10,
    // windows 75 / 50 / 25.
    if (dense) {
      code = stan::services::sample::hmc_nuts_dense_e_adapt(
          *model, *init, seed, chain, init_radius, num_warmup, num_samples, 1, false, refresh, 1.0, 0.0,
          max_depth, delta, 0.05, 0.75, 10.0, 75, 50, 25, interrupt, logger, init_writer, sample_writer,
          diagnostic_writer);
    } else {
      code = stan::services::sample::hmc_nuts_diag_e_adapt(
          *model, *init, seed, chain, init_radius, num_warmup, num_samples, 1, false, refresh, 1.0, 0.0,
          max_depth, delta, 0.05, 0.75, 10.0, 75, 50, 25, interrupt, logger, init_writer, sample_writer,
          diagnostic_writer);
    }
    copy_text(sample_writer.comments(), adaptation, adaptation_capacity);
    if (code != 0) {
      copy_text("the sampler returned error code " + std::to_string(code) + " (see its messages)", error,
                error_capacity);
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

// The log density of the model for the data in data_path at the constrained parameter
// values in params_path (Stan JSON), with every constant and without the Jacobian of the
// constraining transforms: what the model block's statements add up to. Returns 0 and sets
// *value, or 2 with the reason in error.
int lmf_log_density(const char* data_path, const char* params_path, double* value, char* error,
                    long error_capacity) {
  try {
    auto data = read_json(data_path);
    auto params = read_json(params_path);
    std::ostringstream messages;
    std::unique_ptr<stan::model::model_base> model(&new_model(*data, 0, &messages));
    Eigen::VectorXd unconstrained;
    model->transform_inits(*params, unconstrained, &messages);
    *value = model->log_prob(unconstrained, &messages);
    return 0;
  } catch (const std::exception& e) {
    copy_text(e.what(), error, error_capacity);
    return 2;
  }
}

}  // extern "C"
