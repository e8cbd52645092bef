// Hand-written: y ~ x + (x | group), group coefficients centered on (b_Intercept, b), correlated.
// Same parameters (order, types, sizes) as lmmformula's program with centered_1 = 1.
data {
  int<lower=1> N;
  vector[N] Y;
  int<lower=1> K;
  matrix[N, K] X;
  int<lower=2> N_1;
  array[N] int<lower=1, upper=N_1> J_1;
  matrix[N, 2] Z_1;
  real<lower=0> prior_Intercept_df;
  real prior_Intercept_location;
  real<lower=0> prior_Intercept_scale;
  real<lower=0> prior_sigma_df;
  real prior_sigma_location;
  real<lower=0> prior_sigma_scale;
  real<lower=0> prior_sd_df;
  real prior_sd_location;
  real<lower=0> prior_sd_scale;
  real<lower=0> prior_cor_eta;
}
transformed data {
  real mean_x = mean(X[:, 1]);
  vector[N] x = Z_1[:, 2];
}
parameters {
  real Intercept;
  vector[K] b;
  real<lower=0> sigma;
  vector<lower=0>[2] sd_1;
  cholesky_factor_corr[2] L_1;
  array[N_1] row_vector[2] beta;
}
model {
  matrix[N_1, 2] B = to_matrix(beta);
  Y ~ normal(B[J_1, 1] + B[J_1, 2] .* x, sigma);
  beta ~ multi_normal_cholesky([Intercept - mean_x * b[1], b[1]], diag_pre_multiply(sd_1, L_1));
  Intercept ~ student_t(prior_Intercept_df, prior_Intercept_location, prior_Intercept_scale);
  sigma ~ student_t(prior_sigma_df, prior_sigma_location, prior_sigma_scale);
  sd_1 ~ student_t(prior_sd_df, prior_sd_location, prior_sd_scale);
  L_1 ~ lkj_corr_cholesky(prior_cor_eta);
}
