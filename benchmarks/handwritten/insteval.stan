// Hand-written: y ~ service + (1 | s) + (1 | d) + (1 | dept:service), gaussian; student and lecturer effects
// centered at zero, dept:service intercepts centered on the population intercept and on service, which is
// constant within each cell (lmmformula's auto choice).
// Same parameters (order, types, sizes) as lmmformula's program.
data {
  int<lower=1> N;
  vector[N] Y;
  int<lower=1> K;
  matrix[N, K] X;
  int<lower=2> N_1;
  array[N] int<lower=1, upper=N_1> J_1;
  int<lower=2> N_2;
  array[N] int<lower=1, upper=N_2> J_2;
  int<lower=2> N_3;
  array[N] int<lower=1, upper=N_3> J_3;
  matrix[N_3, K + 1] G_3;
  real<lower=0> prior_Intercept_df;
  real prior_Intercept_location;
  real<lower=0> prior_Intercept_scale;
  real<lower=0> prior_sigma_df;
  real prior_sigma_location;
  real<lower=0> prior_sigma_scale;
  real<lower=0> prior_sd_df;
  real prior_sd_location;
  real<lower=0> prior_sd_scale;
}
transformed data {
  vector[K] means_X;
  for (k in 1:K) {
    means_X[k] = mean(X[:, k]);
  }
  matrix[N_3, K] W = G_3[:, 2:(K + 1)];  // the cells' level-constant predictors (service)
}
parameters {
  real Intercept;
  vector[K] b;
  real<lower=0> sigma;
  real<lower=0> sd_s;
  vector[N_1] u_s;
  real<lower=0> sd_d;
  vector[N_2] u_d;
  real<lower=0> sd_dept_service;
  vector[N_3] beta_dept_service;
}
model {
  vector[N_3] level_part = W * b;
  Y ~ normal_id_glm(X, u_s[J_1] + u_d[J_2] + (beta_dept_service - level_part)[J_3], b, sigma);
  u_s ~ normal(0, sd_s);
  u_d ~ normal(0, sd_d);
  beta_dept_service ~ normal(Intercept - dot_product(means_X, b) + level_part, sd_dept_service);
  Intercept ~ student_t(prior_Intercept_df, prior_Intercept_location, prior_Intercept_scale);
  sigma ~ student_t(prior_sigma_df, prior_sigma_location, prior_sigma_scale);
  sd_s ~ student_t(prior_sd_df, prior_sd_location, prior_sd_scale);
  sd_d ~ student_t(prior_sd_df, prior_sd_location, prior_sd_scale);
  sd_dept_service ~ student_t(prior_sd_df, prior_sd_location, prior_sd_scale);
}
