// Hand-written: y ~ x1 + ... + x5 + (1 | subject) + (1 | item), bernoulli-logit; subject intercepts centered
// on their subject-level predictors (x1, x2: G_1 holds each subject's values, zeros for the other columns),
// item intercepts centered on the population intercept (lmmformula's auto choice for these data).
// Same parameters (order, types, sizes) as lmmformula's program.
data {
  int<lower=1> N;
  array[N] int<lower=0, upper=1> Y;
  int<lower=1> K;
  matrix[N, K] X;
  int<lower=2> N_1;
  array[N] int<lower=1, upper=N_1> J_1;
  matrix[N_1, K + 1] G_1;
  int<lower=2> N_2;
  array[N] int<lower=1, upper=N_2> J_2;
  real<lower=0> prior_Intercept_df;
  real prior_Intercept_location;
  real<lower=0> prior_Intercept_scale;
  real<lower=0> prior_sd_df;
  real prior_sd_location;
  real<lower=0> prior_sd_scale;
}
transformed data {
  vector[K] means_X;
  for (k in 1:K) {
    means_X[k] = mean(X[:, k]);
  }
  matrix[N_1, K] W = G_1[:, 2:(K + 1)];  // subject-level predictors
}
parameters {
  real Intercept;
  vector[K] b;
  real<lower=0> sd_subject;
  vector[N_1] u_subject;
  real<lower=0> sd_item;
  vector[N_2] beta_item;
}
model {
  vector[N_1] level_part = W * b;
  Y ~ bernoulli_logit_glm(X, (u_subject - level_part)[J_1] + beta_item[J_2], b);
  u_subject ~ normal(level_part, sd_subject);
  beta_item ~ normal(Intercept - dot_product(means_X, b), sd_item);
  Intercept ~ student_t(prior_Intercept_df, prior_Intercept_location, prior_Intercept_scale);
  sd_subject ~ student_t(prior_sd_df, prior_sd_location, prior_sd_scale);
  sd_item ~ student_t(prior_sd_df, prior_sd_location, prior_sd_scale);
}
