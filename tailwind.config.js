/** Tailwind 3.4: scans templates, our JS and Python (class names built in code). */
module.exports = {
  darkMode: "class",
  content: ["templates/**/*.html", "static/js/**/*.js", "app/**/*.py"],
  theme: {
    extend: {
      fontFamily: {
        sans: ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
      },
    },
  },
  plugins: [require("@tailwindcss/forms")],
};
